"""Sending deliveries: one attempt at a time, each one logged, retried with backoff."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from datetime import timedelta

import httpx
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from lifecycle import crypto
from lifecycle.outbound import OutboundRefused, pinned_client

from ..models import Delivery, DeliveryAttempt
from ..slack import slack_text

logger = logging.getLogger(__name__)
USER_AGENT = "Lifecycle-Webhooks/1"


def retry_delay(attempt: int) -> float:
    """Seconds to wait after failed attempt number `attempt` (1-based)."""
    return settings.WEBHOOK_RETRY_BASE_SECONDS * (2 ** (attempt - 1))


def payload_for(delivery: Delivery) -> dict:
    event = delivery.event
    return {
        "id": str(event.pk),
        "event": event.event,
        "org": delivery.org.slug,
        "created_at": event.created_at.isoformat().replace("+00:00", "Z"),
        "data": event.data,
    }


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def request_for(delivery: Delivery) -> tuple[bytes, dict]:
    """The raw body and headers of a delivery, as sent."""
    webhook = delivery.webhook
    payload = payload_for(delivery)
    if webhook.format == "slack":
        payload = {"text": slack_text(payload)}
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Lifecycle-Event": delivery.event.event,
        "X-Lifecycle-Delivery": str(delivery.pk),
        # The event id stays the same across retries and webhooks: receivers dedupe by it.
        "Idempotency-Key": str(delivery.event_id),
    }
    if webhook.secret_encrypted:
        headers["X-Lifecycle-Signature"] = signature(crypto.decrypt(webhook.secret_encrypted), body)
    return body, headers


def _sendable(delivery: Delivery) -> bool:
    # A ping is how a disabled webhook is checked before it is switched on.
    return delivery.webhook.enabled or delivery.event.event == "ping"


def _lock(org_id, delivery_id) -> Delivery | None:
    return (
        Delivery.objects.for_org(org_id)
        # Only the delivery's row: a join's rows (the org, the webhook) stay unlocked.
        .select_for_update(of=("self",))
        .select_related("webhook", "event", "org")
        .filter(pk=delivery_id)
        .first()
    )


def delivery_attempt(*, org_id, delivery_id, attempt: int) -> None:
    """Make attempt number `attempt` of a delivery, unless it is stale or already taken."""
    timeout = settings.WEBHOOK_TIMEOUT_SECONDS
    with transaction.atomic():
        delivery = _lock(org_id, delivery_id)
        now = timezone.now()
        if (
            delivery is None
            or delivery.status != Delivery.PENDING
            or delivery.attempts != attempt - 1
            or (delivery.lease_until and delivery.lease_until > now)
        ):
            return  # a copy of a message already handled, or one under way elsewhere
        delivery.attempts = attempt
        delivery.lease_until = now + timedelta(seconds=timeout + 30)
        delivery.save(update_fields=["attempts", "lease_until"])

    started_at = timezone.now()
    clock = time.monotonic()
    status_code, error = None, ""
    if not _sendable(delivery):
        error = "The webhook is disabled."
    else:
        try:
            body, headers = request_for(delivery)
            with pinned_client(delivery.webhook.url, timeout=timeout) as client:
                response = client.post(delivery.webhook.url, content=body, headers=headers)
            status_code = response.status_code
            if not 200 <= status_code < 300:
                error = f"HTTP {status_code}"
        except OutboundRefused as exc:
            error = str(exc)
        except crypto.InvalidToken:
            error = "The webhook's secret cannot be decrypted (LIFECYCLE_ENCRYPTION_KEYS changed?)."
        except httpx.TimeoutException:
            error = f"Timed out after {timeout} s."
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    duration_ms = int((time.monotonic() - clock) * 1000)
    _finish(delivery, attempt, started_at, duration_ms, status_code, error[:500])


def _finish(delivery, attempt, started_at, duration_ms, status_code, error) -> None:
    from ..tasks import deliver

    with transaction.atomic():
        current = _lock(delivery.org_id, delivery.pk)
        if current is None:
            return  # the webhook was deleted meanwhile
        now = timezone.now()
        succeeded = not error
        retry_at = None
        if succeeded:
            current.status, current.finished_at, current.next_attempt_at = Delivery.SUCCEEDED, now, None
        elif attempt < settings.WEBHOOK_MAX_ATTEMPTS and _sendable(current):
            delay = retry_delay(attempt)
            retry_at = now + timedelta(seconds=delay)
            current.next_attempt_at = retry_at
            transaction.on_commit(
                lambda: deliver.apply_async(
                    (str(current.org_id), str(current.pk), attempt + 1), countdown=delay
                )
            )
        else:
            current.status, current.finished_at, current.next_attempt_at = Delivery.FAILED, now, None
        current.lease_until = None
        current.last_status_code = status_code
        current.last_error = error
        current.save(
            update_fields=[
                "status",
                "finished_at",
                "next_attempt_at",
                "lease_until",
                "last_status_code",
                "last_error",
            ]
        )
        DeliveryAttempt.objects.create(
            org_id=current.org_id,
            delivery=current,
            number=attempt,
            started_at=started_at,
            duration_ms=duration_ms,
            status_code=status_code,
            error=error,
            succeeded=succeeded,
            next_retry_at=retry_at,
        )
    if not succeeded:
        logger.info(
            "webhook delivery %s attempt %s failed: %s%s",
            delivery.pk,
            attempt,
            error,
            f", retry at {retry_at:%H:%M:%S}" if retry_at else ", giving up",
        )


def delivery_sweep(*, grace_seconds: float | None = None, limit: int = 500) -> int:
    """Enqueue pending deliveries that are overdue: never enqueued (the process died
    between the commit and the enqueue), or whose retry message was lost. Returns how
    many were enqueued. A copy of a message still on its way is harmless (see
    delivery_attempt)."""
    from ..tasks import deliver

    grace = settings.WEBHOOK_SWEEP_GRACE_SECONDS if grace_seconds is None else grace_seconds
    now = timezone.now()
    # Maintenance across every org, by design: each row is then handled in its own org.
    overdue = list(
        Delivery.objects.dangerously_unscoped()
        .filter(status=Delivery.PENDING, next_attempt_at__lte=now - timedelta(seconds=grace))
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .order_by("next_attempt_at")
        .values_list("org_id", "pk", "attempts")[:limit]
    )
    for org_id, pk, attempts in overdue:
        deliver.delay(str(org_id), str(pk), attempts + 1)
    return len(overdue)


def outbox_purge(*, limit: int = 5000) -> int:
    """Drop events (and their delivery logs) older than WEBHOOK_OUTBOX_KEEP_DAYS whose
    deliveries have all ended. Returns how many events went."""
    from ..models import OutboxEvent

    cutoff = timezone.now() - timedelta(days=settings.WEBHOOK_OUTBOX_KEEP_DAYS)
    # Maintenance across every org, by design; a bounded batch per sweep.
    pending = set(
        Delivery.objects.dangerously_unscoped()
        .filter(status=Delivery.PENDING, event__created_at__lt=cutoff)
        .values_list("event_id", flat=True)
    )
    old = [
        pk
        for pk in OutboxEvent.objects.dangerously_unscoped()
        .filter(created_at__lt=cutoff)
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
        if pk not in pending
    ]
    if not old:
        return 0
    _, by_model = OutboxEvent.objects.dangerously_unscoped().filter(pk__in=old).delete()
    return by_model.get(OutboxEvent._meta.label, 0)
