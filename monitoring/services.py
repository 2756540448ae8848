"""Alerts open once, update while their condition lasts, and resolve once.

Whatever watches a metric (the spend check today; latency and error rates later) calls
`alert_open_or_update` every time it sees the condition and `alert_resolve` when it no
longer holds: both are idempotent, so a watcher that runs often never floods anyone.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from lifecycle.audit import audit_record
from webhooks.events import event_emit

from .api.serializers import AlertSerializer
from .models import Alert, AlertLevel


def _open_alert(*, org_id, stage_id, metric: str, agent_id) -> Alert | None:
    return (
        Alert.objects.for_org(org_id)
        .select_for_update()
        .filter(stage_id=stage_id, agent_id=agent_id, metric=metric, resolved_at__isnull=True)
        .first()
    )


def _emit(alert: Alert, event: str) -> None:
    """The org's webhooks hear of it (written to their outbox in this transaction)."""
    event_emit(org=alert.org_id, event=event, data=dict(AlertSerializer(alert).data))


def alert_open_or_update(
    *,
    org,
    stage,
    metric: str,
    level: str,
    value: Decimal,
    threshold: Decimal,
    agent=None,
    version: int | None = None,
    details: dict | None = None,
) -> tuple[Alert, bool]:
    """The open alert for (stage, agent, metric), opened now or updated; and whether it opened."""
    if level not in AlertLevel.values:
        raise ValueError(f"unknown alert level {level!r}")
    fields = {
        "level": level,
        "value": value,
        "threshold": threshold,
        "version": version,
        "details": details or {},
    }
    agent_id = getattr(agent, "pk", agent)
    with transaction.atomic():
        alert = _open_alert(org_id=org.pk, stage_id=stage.pk, metric=metric, agent_id=agent_id)
        if alert is None:
            try:
                with transaction.atomic():  # a concurrent opener wins the unique constraint
                    alert = Alert.objects.create(
                        org=org, stage=stage, agent_id=agent_id, metric=metric, **fields
                    )
            except IntegrityError:
                alert = _open_alert(org_id=org.pk, stage_id=stage.pk, metric=metric, agent_id=agent_id)
                if alert is None:
                    raise
            else:
                audit_record(
                    org=org,
                    actor=None,
                    action="alert.opened",
                    target=alert,
                    changes={"stage": stage.slug, "metric": metric, **_summary(alert)},
                )
                _emit(alert, "alert.opened")
                return alert, True
        changed = [name for name, new in fields.items() if getattr(alert, name) != new]
        if changed:
            for name in changed:
                setattr(alert, name, fields[name])
            alert.save(update_fields=[*changed, "updated_at"])
        return alert, False


def alert_resolve(*, org, stage, metric: str, agent=None, reason: str = "") -> Alert | None:
    """Resolve the open alert for (stage, agent, metric), if there is one."""
    agent_id = getattr(agent, "pk", agent)
    with transaction.atomic():
        alert = _open_alert(org_id=org.pk, stage_id=stage.pk, metric=metric, agent_id=agent_id)
        if alert is None:
            return None
        alert.resolved_at = timezone.now()
        alert.save(update_fields=["resolved_at", "updated_at"])
        audit_record(
            org=org,
            actor=None,
            action="alert.resolved",
            target=alert,
            changes={"stage": stage.slug, "metric": metric, "reason": reason[:200], **_summary(alert)},
        )
        _emit(alert, "alert.resolved")
        return alert


def _summary(alert: Alert) -> dict:
    return {"level": alert.level, "value": str(alert.value), "threshold": str(alert.threshold)}
