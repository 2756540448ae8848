"""Pages: the org's Webhooks (owners and admins) and every member's Notifications."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect
from django.utils import timezone

from lifecycle.api import OrgAdmin
from lifecycle.errors import DomainError
from lifecycle.ui import OrgObjectPage, OrgPage, flash_error, form_errors_from

from .forms import KNOWN_EVENTS, WebhookForm
from .models import Delivery, Webhook
from .notifications import describe, notifications_for, notifications_mark_read, read_until
from .services import webhooks as svc

LOG_SIZE = 50


def _form_values(form: WebhookForm) -> dict:
    data = form.cleaned_data
    return {
        "url": data["url"],
        "events": data["events"],
        "format": data["format"],
        "description": data["description"],
        "enabled": data["enabled"],
    }


class WebhooksPage(OrgPage):
    template_name = "webhooks/list.html"
    nav = "webhooks"
    title = "Webhooks"
    rule = OrgAdmin()

    def get_context_data(self, form=None, **kwargs):
        context = super().get_context_data(**kwargs)
        webhooks = list(Webhook.objects.for_org(self.org).order_by("created_at"))
        last = {}
        for delivery in (
            Delivery.objects.for_org(self.org)
            .filter(webhook__in=webhooks)
            .select_related("event")
            .order_by("webhook_id", "-created_at")
        ):
            last.setdefault(delivery.webhook_id, delivery)
        context.update(
            rows=[{"webhook": w, "last": last.get(w.pk)} for w in webhooks],
            form=form or WebhookForm(),
            known_events=KNOWN_EVENTS,
        )
        return context

    def post(self, request, org):
        form = WebhookForm(request.POST)
        if form.is_valid():
            try:
                webhook = svc.webhook_create(
                    access=self.access,
                    secret=form.cleaned_data["secret"] or None,
                    **_form_values(form),
                )
            except DomainError as exc:
                form_errors_from(form, exc)
            else:
                messages.success(request, f"Added the webhook to {webhook.url}.")
                return redirect("webhook", org=self.org.slug, webhook_id=webhook.pk)
        return self.render_to_response(self.get_context_data(form=form))


class WebhookPage(OrgObjectPage):
    template_name = "webhooks/detail.html"
    nav = "webhooks"
    title = "Webhook"
    rule = OrgAdmin()
    model = Webhook
    stage_field = None
    lookup_url_kwarg = "webhook_id"

    def get_context_data(self, form=None, **kwargs):
        context = super().get_context_data(**kwargs)
        webhook = self.object
        deliveries = list(
            Delivery.objects.for_org(self.org)
            .filter(webhook=webhook)
            .select_related("event")
            .prefetch_related("attempt_log")
            .order_by("-created_at")[:LOG_SIZE]
        )
        initial = {
            "url": webhook.url,
            "events": " ".join(webhook.events),
            "format": webhook.format,
            "description": webhook.description,
            "enabled": webhook.enabled,
        }
        context.update(
            webhook=webhook,
            deliveries=deliveries,
            form=form or WebhookForm(initial=initial),
            known_events=KNOWN_EVENTS,
            page_title=f"Webhook {webhook.url} · {self.org.name}",
        )
        return context

    def post(self, request, org, webhook_id):
        webhook = self.object
        here = redirect("webhook", org=self.org.slug, webhook_id=webhook.pk)
        action = request.POST.get("action")
        try:
            if action == "delete":
                svc.webhook_delete(access=self.access, webhook=webhook)
                messages.success(request, f"Deleted the webhook to {webhook.url}.")
                return redirect("webhooks", org=self.org.slug)
            if action == "test":
                svc.webhook_test(access=self.access, webhook=webhook)
                messages.success(request, "Test event sent: its delivery is in the log below.")
                return here
        except DomainError as exc:
            flash_error(request, exc)
            return here
        form = WebhookForm(request.POST)
        if form.is_valid():
            secret = form.cleaned_data["secret"]
            try:
                svc.webhook_update(
                    access=self.access,
                    webhook=webhook,
                    secret=secret if secret else svc.KEEP,
                    **_form_values(form),
                )
            except DomainError as exc:
                form_errors_from(form, exc)
            else:
                messages.success(request, "Saved.")
                return here
        return self.render_to_response(self.get_context_data(form=form))


class NotificationsPage(OrgPage):
    template_name = "webhooks/notifications.html"
    nav = "notifications"
    title = "Notifications"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        seen = read_until(self.access)
        items = [describe(row, self.org.slug) for row in notifications_for(self.access)[:100]]
        for item in items:
            item["unread"] = seen is None or item["created_at"] > seen
        context.update(items=items, unread=sum(1 for i in items if i["unread"]))
        return context

    def post(self, request, org):
        notifications_mark_read(access=self.access, until=timezone.now())
        return redirect("notifications", org=self.org.slug)
