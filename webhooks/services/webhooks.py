"""Webhooks of an org: owners and admins add, change, remove and test them."""

from __future__ import annotations

from django.db import transaction

from lifecycle import crypto
from lifecycle.access import Access
from lifecycle.audit import audit_record
from lifecycle.errors import Forbidden, Invalid
from lifecycle.outbound import check_url

from ..events import _emit, pattern_valid
from ..models import Webhook

# `secret` not given on update: keep the stored one (it is never read back).
KEEP = object()
FORMATS = ("json", "slack")
MIN_SECRET = 16
MAX_SECRET = 200
MAX_PATTERNS = 50


def _require_admin(access: Access) -> None:
    if not access.is_admin:
        raise Forbidden("Only org owners and admins manage webhooks.")


def _clean_url(url) -> str:
    if not isinstance(url, str) or not url.strip():
        raise Invalid("A URL is required.", fields={"url": ["A URL is required."]})
    url = url.strip()
    if len(url) > 500:
        raise Invalid("The URL is too long.", fields={"url": ["At most 500 characters."]})
    try:
        check_url(url)
    except Invalid as exc:
        raise Invalid(exc.message, fields={"url": [exc.message]}) from exc
    except Exception as exc:
        message = getattr(exc, "message", str(exc))
        raise Invalid(message, fields={"url": [message]}) from exc
    return url


def _clean_events(events) -> list[str]:
    if not isinstance(events, list) or not events:
        raise Invalid("Choose at least one event.", fields={"events": ["A non-empty list of event names."]})
    if len(events) > MAX_PATTERNS:
        raise Invalid("Too many event patterns.", fields={"events": [f"At most {MAX_PATTERNS}."]})
    bad = [e for e in events if not isinstance(e, str) or not pattern_valid(e)]
    if bad:
        shown = ", ".join(repr(b)[:60] for b in bad[:5])
        message = f"Unknown events: {shown}. Use names such as promotion.succeeded, promotion.* or *."
        raise Invalid(message, fields={"events": [message]})
    return list(dict.fromkeys(events))


def _clean_format(fmt) -> str:
    if fmt not in FORMATS:
        raise Invalid("Format is json or slack.", fields={"format": ["json or slack."]})
    return fmt


def _clean_secret(secret, fmt: str, *, had_secret: bool) -> str | None:
    """The new secret ("" to remove), or None to keep the stored one."""
    if secret is KEEP or secret is None:
        if fmt == "json" and not had_secret:
            raise Invalid(
                "A signing secret is required for JSON webhooks.",
                fields={"secret": ["Required for format json."]},
            )
        return None
    if not isinstance(secret, str):
        raise Invalid("The secret must be a string.", fields={"secret": ["A string."]})
    if secret == "" and fmt == "json":
        raise Invalid(
            "JSON webhooks are signed: keep a secret.", fields={"secret": ["Required for format json."]}
        )
    if secret and not MIN_SECRET <= len(secret) <= MAX_SECRET:
        message = f"The secret must be {MIN_SECRET} to {MAX_SECRET} characters."
        raise Invalid(message, fields={"secret": [message]})
    return secret


def webhook_create(
    *, access: Access, url, events, format="json", secret=KEEP, description="", enabled=True
) -> Webhook:
    _require_admin(access)
    fmt = _clean_format(format)
    url, events = _clean_url(url), _clean_events(events)
    secret = _clean_secret(secret, fmt, had_secret=False)
    description = _clean_description(description)
    with transaction.atomic():
        webhook = Webhook.objects.create(
            org=access.org,
            url=url,
            events=events,
            format=fmt,
            secret_encrypted=crypto.encrypt(secret) if secret else "",
            description=description,
            enabled=bool(enabled),
            created_by=access.user,
        )
        audit_record(
            org=access.org,
            actor=access.user,
            action="webhook.created",
            target=webhook,
            changes={
                "url": url,
                "events": events,
                "format": fmt,
                "enabled": webhook.enabled,
                "secret_set": bool(secret),
            },
        )
    return webhook


def _clean_description(description) -> str:
    if not isinstance(description, str) or len(description) > 200:
        raise Invalid("The description is at most 200 characters.", fields={"description": ["At most 200."]})
    return description.strip()


def webhook_update(*, access: Access, webhook: Webhook, guard=None, secret=KEEP, **changes) -> Webhook:
    """Change some of url, events, format, description, enabled; `secret` replaces it."""
    _require_admin(access)
    allowed = {"url", "events", "format", "description", "enabled"}
    unknown = set(changes) - allowed
    if unknown:
        raise Invalid(f"Unknown fields: {', '.join(sorted(unknown))}.")
    with transaction.atomic():
        webhook = Webhook.objects.for_org(access.org).select_for_update().get(pk=webhook.pk)
        if guard is not None:
            guard(webhook)
        fmt = _clean_format(changes.get("format", webhook.format))
        clean = {"format": fmt}
        if "url" in changes:
            clean["url"] = _clean_url(changes["url"])
        if "events" in changes:
            clean["events"] = _clean_events(changes["events"])
        if "description" in changes:
            clean["description"] = _clean_description(changes["description"])
        if "enabled" in changes:
            if not isinstance(changes["enabled"], bool):
                raise Invalid("enabled is true or false.", fields={"enabled": ["A boolean."]})
            clean["enabled"] = changes["enabled"]
        new_secret = _clean_secret(secret, fmt, had_secret=bool(webhook.secret_encrypted))
        changed = [name for name, value in clean.items() if getattr(webhook, name) != value]
        for name, value in clean.items():
            setattr(webhook, name, value)
        if new_secret is not None:
            webhook.secret_encrypted = crypto.encrypt(new_secret) if new_secret else ""
            changed.append("secret")
        webhook.save()
        audit_record(
            org=access.org,
            actor=access.user,
            action="webhook.updated",
            target=webhook,
            changes={
                "changed": changed,
                **{name: clean[name] for name in changed if name in clean},
                "secret_set": bool(webhook.secret_encrypted),
            },
        )
    return webhook


def webhook_delete(*, access: Access, webhook: Webhook, guard=None) -> None:
    _require_admin(access)
    with transaction.atomic():
        webhook = Webhook.objects.for_org(access.org).select_for_update().get(pk=webhook.pk)
        if guard is not None:
            guard(webhook)
        audit_record(
            org=access.org,
            actor=access.user,
            action="webhook.deleted",
            target=webhook,
            changes={"url": webhook.url},
        )
        webhook.delete()


def webhook_test(*, access: Access, webhook: Webhook):
    """Send a `ping` to this webhook alone, enabled or not; returns its delivery."""
    _require_admin(access)
    with transaction.atomic():
        webhook = Webhook.objects.for_org(access.org).get(pk=webhook.pk)
        # A disabled webhook is still sent its ping: that is how one checks it first.
        event = _emit(
            org=access.org,
            event="ping",
            data={"webhook": str(webhook.pk), "by": access.user.email, "events": webhook.events},
            webhooks=[webhook],
        )
        audit_record(org=access.org, actor=access.user, action="webhook.tested", target=webhook)
    return event.deliveries.get(webhook=webhook)
