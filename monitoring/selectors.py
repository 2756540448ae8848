"""Reading alerts: the ones a member may see, and their API shape."""

from __future__ import annotations

from decimal import Decimal

from lifecycle.access import Access

from .models import Alert

STATUSES = ("open", "resolved")
# Decimal places each metric's value is shown with (money in cents).
PLACES = {"spend": 2}


def number(value: Decimal, metric: str) -> str:
    """A value as a decimal string: money with cents, other metrics without trailing zeros."""
    places = PLACES.get(metric)
    if places is not None:
        return f"{value:.{places}f}"
    return f"{value.normalize():f}"


def alerts_visible(access: Access, *, status: str | None = None, stage_ids=None):
    """Alerts in the stages the caller has a role in, newest first."""
    alerts = access.visible(Alert.objects.for_org(access.org), stage_field="stage").select_related("stage")
    if status == "open":
        alerts = alerts.filter(resolved_at__isnull=True)
    elif status == "resolved":
        alerts = alerts.filter(resolved_at__isnull=False)
    if stage_ids is not None:
        alerts = alerts.filter(stage_id__in=stage_ids)
    return alerts.order_by("-opened_at", "id")
