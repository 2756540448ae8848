"""The event outbox: `event_emit` is how a service tells the world something happened.

Call it inside the service's own `transaction.atomic()`, after the change: the outbox row
and a pending delivery per matching webhook are written in that same transaction, so
either the change and its event are both kept or neither is. Delivery is enqueued on
commit; if the process dies before that, the periodic sweep (webhooks.tasks) finds the
pending deliveries and sends them. Receivers may see an event twice (at-least-once), and
recognise it by its `id`.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from lifecycle.redaction import redact

EVENTS = (
    "promotion.requested",
    "promotion.succeeded",
    "promotion.failed",
    "pull.succeeded",
    "pull.failed",
    "backport.proposed",
    "backport.applied",
    "backport.declined",
    "approval.requested",
    "approval.approved",
    "approval.rejected",
    "approval.expired",
    "gate.failed",
    "test_run.finished",
    "red_team.finished",
    "soak.finished",
    "release.started",
    "release.advanced",
    "release.paused",
    "release.resumed",
    "release.succeeded",
    "release.rolled_back",
    "alert.opened",
    "alert.resolved",
    "ping",
)
EVENT_GROUPS = tuple(sorted({name.split(".", 1)[0] for name in EVENTS if "." in name}))


def pattern_valid(pattern: str) -> bool:
    if pattern == "*" or pattern in EVENTS:
        return True
    group, dot, rest = pattern.partition(".")
    return bool(dot) and rest == "*" and group in EVENT_GROUPS


def pattern_matches(pattern: str, event: str) -> bool:
    # A ping goes only to the webhook that asked for it (Send test), never by pattern.
    if event == "ping":
        return False
    if pattern in ("*", event):
        return True
    return pattern.endswith(".*") and event.startswith(pattern[:-1])


def matches(patterns, event: str) -> bool:
    return any(pattern_matches(p, event) for p in patterns or ())


def event_emit(*, org, event: str, data: dict) -> None:
    """Record `event` for `org` (an Organization or its id) in the caller's transaction;
    deliver it after commit.

    `data` should hold ids, names and stages, never secrets; anything secret-looking is
    masked anyway. An unknown event name is a programming error (ValueError).
    """
    if event not in EVENTS:
        raise ValueError(f"Unknown event {event!r}; known events are webhooks.events.EVENTS.")
    if not isinstance(data, dict):
        raise ValueError("Event data must be a dict.")
    _emit(org=org, event=event, data=data)


def _emit(*, org, event: str, data: dict, webhooks=None):
    from .models import Delivery, OutboxEvent, Webhook

    # The caller's transaction when there is one (the usual case); its own otherwise.
    org_id = getattr(org, "pk", org)
    with transaction.atomic():
        row = OutboxEvent.objects.create(org_id=org_id, event=event, data=_clean(data))
        if webhooks is None:
            candidates = Webhook.objects.for_org(org_id).filter(enabled=True).only("id", "events")
            webhooks = [hook for hook in candidates if matches(hook.events, event)]
        now = timezone.now()
        deliveries = [
            Delivery(org_id=row.org_id, webhook=hook, event=row, next_attempt_at=now) for hook in webhooks
        ]
        if deliveries:
            Delivery.objects.bulk_create(deliveries)
            _enqueue_on_commit(row.org_id, [d.pk for d in deliveries])
    return row


def _enqueue_on_commit(org_id, delivery_ids) -> None:
    from .tasks import deliver

    def enqueue():
        for delivery_id in delivery_ids:
            deliver.delay(str(org_id), str(delivery_id), 1)

    transaction.on_commit(enqueue)


def _clean(data):
    """JSON-safe and redacted: ids, datetimes and decimals become strings."""
    import json

    from django.core.serializers.json import DjangoJSONEncoder

    return redact(json.loads(json.dumps(data, cls=DjangoJSONEncoder)))
