"""The approvals inbox and the evidence packet (one request, decided on one page)."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect
from django.urls import NoReverseMatch, reverse

from lifecycle.api import Member
from lifecycle.errors import DomainError
from lifecycle.ui import OrgObjectPage, OrgPage, flash_error

from .evidence import approval_evidence
from .models import ApprovalRequest, ApprovalStatus
from .selectors import approvals_to_review, approvals_visible
from .services.approval import approval_cancel, approval_decide, approvals_count, group_status, may_decide

SHOWS = ("to_review", *ApprovalStatus.values, "all")
PAGE = 100


def action_approvals_url(org) -> str | None:
    """The inbox's second tab, when the action approvals page exists on this build."""
    try:
        return reverse("action-approvals", kwargs={"org": org.slug})
    except NoReverseMatch:
        return None


class ApprovalsPage(OrgPage):
    """The inbox: what waits for you, and every request you may see by status."""

    template_name = "approvals/inbox.html"
    nav = "approvals"
    title = "Approvals"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        show = self.request.GET.get("show", "to_review")
        show = show if show in SHOWS else "to_review"
        requests = approvals_visible(self.access).prefetch_related("decisions")
        if show == "to_review":
            requests = approvals_to_review(self.access, requests)
        elif show != "all":
            requests = requests.filter(status=show)
        rows = [(r, approvals_count(r.decisions.all())) for r in requests[:PAGE]]
        context.update(rows=rows, show=show, shows=SHOWS, actions_url=action_approvals_url(self.org))
        return context


class ApprovalPage(OrgObjectPage):
    """The evidence packet: the exact change with its evidence, and the decision."""

    template_name = "approvals/request.html"
    nav = "approvals"
    title = "Approval request"
    model = ApprovalRequest
    stage_field = None  # approvals_visible(): the target stage's roles, or the requester
    lookup_url_kwarg = "approval_id"
    post_rule = Member()  # who decides is the service's question (403 for the requester)

    def refine_object_queryset(self, queryset):
        return approvals_visible(self.access, queryset).select_related("source_agent", "operation")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        request = self.object
        decisions = list(request.decisions.select_related("user"))
        decided = any(d.user_id == self.request.user.pk for d in decisions)
        context.update(
            approval=request,
            decisions=decisions,
            approvals=approvals_count(decisions),
            remaining=max(0, request.required - approvals_count(decisions)),
            groups=group_status(request, decisions),
            evidence=approval_evidence(request, access=self.access, lines=True),
            can_decide=request.is_open and not decided and may_decide(self.access, request),
            decided=decided,
            is_requester=request.requested_by_id == self.request.user.pk,
            page_title=f"Approve {request.kind} of {request.agent.name} — {self.org.name}",
        )
        return context

    def post(self, request, org, approval_id):
        action = request.POST.get("action", "")
        try:
            if action == "cancel":
                approval_cancel(access=self.access, request=self.object)
                messages.success(request, "Request cancelled; the change will not run.")
            elif action in ("approve", "reject"):
                done = approval_decide(
                    access=self.access,
                    request=self.object,
                    decision=action,
                    comment=request.POST.get("comment", "")[:6000],
                )
                if done.status == ApprovalStatus.APPROVED:
                    messages.success(request, "Approved: the change is queued and runs after one more check.")
                elif done.status == ApprovalStatus.REJECTED:
                    messages.success(request, "Rejected: the change was cancelled.")
                else:
                    messages.success(request, "Approval recorded: the change waits for the others.")
            else:
                messages.error(request, "Choose Approve, Reject or Cancel.")
        except DomainError as exc:
            flash_error(request, exc)
            if exc.fields:
                for problems in exc.fields.values():
                    for problem in problems:
                        messages.error(request, problem)
        return redirect("approval", org=self.org.slug, approval_id=self.object.pk)
