"""UI pages of the kernel: the audit log and the progress of operations."""

from django.contrib import messages
from django.contrib.messages import get_messages
from django.http import Http404
from django.shortcuts import redirect
from django.utils.dateparse import parse_datetime

from .api import Member, OrgAdmin
from .audit import audit_visible_to
from .audit_export import FILTERS, audit_export_start, audit_filtered
from .errors import DomainError, Invalid
from .operations import operation_cancel, operation_children, operation_live_progress, operations_visible_to
from .ui import STARTED_TAG, OrgPage, flash_error

PAGE = 50


class AuditPage(OrgPage):
    template_name = "lifecycle/audit.html"
    nav = "audit"
    title = "Audit log"
    post_rule = OrgAdmin()

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        filters = {name: self.request.GET.get(name, "").strip() for name in FILTERS}
        events = audit_visible_to(self.access)
        try:
            events = audit_filtered(events, filters)
        except Invalid as exc:
            context["filter_error"] = exc.fields
            events = audit_filtered(audit_visible_to(self.access), {})
        before = parse_datetime(self.request.GET.get("before", "") or "")
        if before is not None:
            events = events.filter(created_at__lt=before)
        page = list(events[: PAGE + 1])
        context.update(
            filters=filters,
            events=page[:PAGE],
            older=page[PAGE - 1].created_at.isoformat() if len(page) > PAGE else None,
            query={k: v for k, v in filters.items() if v},
        )
        return context

    def post(self, request, org):
        filters = {name: request.POST.get(name, "").strip() for name in FILTERS}
        try:
            operation = audit_export_start(access=self.access, filters=filters)
        except DomainError as exc:
            flash_error(request, exc)
            return redirect("audit", org=self.org.slug)
        messages.info(request, "Export started. It runs in the background.", extra_tags=STARTED_TAG)
        return redirect("operation", org=self.org.slug, operation_id=operation.pk)


class OperationPage(OrgPage):
    """An operation's progress; the template polls itself with htmx while it runs."""

    template_name = "lifecycle/operation.html"
    title = "Operation"
    # Cancelling is for the requester or an org admin: decided per object in post().
    post_rule = Member()

    def get_template_names(self):
        # Only the status card's own poll gets the card alone: a boosted navigation also
        # sends HX-Request, and answering it with the card dropped the header and navigation.
        if self.request.htmx and self.request.htmx.target == "operation-status":
            return ["lifecycle/_operation_status.html"]
        return [self.template_name]

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        operation = self._operation()
        context.update(
            operation=operation,
            progress=operation_live_progress(operation),
            children=[(child, operation_live_progress(child)) for child in operation_children(operation)],
            can_cancel=not operation.is_finished and self._may_cancel(operation),
        )
        if operation.is_finished:
            # A finished operation's page no longer says it "started": those flashes are dropped
            # (on an open page the polled card removes them, see _operation_status.html).
            context["messages"] = [m for m in get_messages(self.request) if STARTED_TAG not in m.tags.split()]
        return context

    def post(self, request, org, operation_id):
        operation = self._operation()
        if not self._may_cancel(operation):
            self.deny("cancel: not the requester or an org admin")
        try:
            operation = operation_cancel(actor=request.user, operation=operation)
        except DomainError as exc:
            flash_error(request, exc)
        else:
            if operation.is_finished:
                messages.info(request, "Cancelled.")
            else:
                messages.info(request, "Cancellation requested: the work stops at its next checkpoint.")
        return redirect("operation", org=self.org.slug, operation_id=operation.pk)

    def _operation(self):
        operation = operations_visible_to(self.access).filter(pk=self.kwargs["operation_id"]).first()
        if operation is None:
            raise Http404
        return operation

    def _may_cancel(self, operation) -> bool:
        return operation.requested_by_id == self.request.user.pk or self.access.is_admin
