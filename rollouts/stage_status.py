"""What the Stages page and a stage's policy page show of a stage's state: a freeze open
now or coming within 7 days, the month's spend against the budget as a bar, and the
stage's open alerts."""

from __future__ import annotations

from decimal import Decimal

from django.db.models import Sum
from django.template.loader import render_to_string

from agents.models import Conversation
from monitoring.models import Alert

from .models import StagePolicy
from .policy import DEFAULTS
from .spending import money, month_bounds, ratio_of
from .templatetags.stage_policy import freeze_status


def spend_bar(spend: dict) -> dict:
    """A <meter>'s attributes for spend against budget: green under `alert_at`, amber up
    to the budget, red at it. None without a budget."""
    if spend["budget"] is None:
        return None
    ratio = spend["ratio"] or 0.0
    return {
        "value": f"{min(ratio, 1.0):.4f}",
        "low": f"{spend['alert_at']:.4f}",
        "percent": round(ratio * 100),
    }


def open_alerts(org_id, stage_ids) -> dict:
    """{stage id: [open alerts]} in one query."""
    found: dict = {}
    alerts = (
        Alert.objects.for_org(org_id)
        .filter(stage_id__in=stage_ids, resolved_at__isnull=True)
        .order_by("-opened_at", "id")
    )
    for alert in alerts:
        found.setdefault(alert.stage_id, []).append(alert)
    return found


def stage_summaries(access, stages) -> dict:
    """The Stages page's provider (accounts.hooks): three queries whatever the stage count."""
    visible = [stage for stage in stages if access.has_stage_role(stage, "viewer")]
    if not visible:
        return {}
    ids = [stage.pk for stage in visible]
    documents = dict(
        StagePolicy.objects.for_org(access.org).filter(stage_id__in=ids).values_list("stage_id", "document")
    )
    month, start, end = month_bounds()
    totals = dict(
        Conversation.objects.for_org(access.org)
        .filter(stage_id__in=ids, started_at__gte=start, started_at__lt=end)
        .order_by()
        .values("stage_id")
        .annotate(total=Sum("cost"))
        .values_list("stage_id", "total")
    )
    alerts = open_alerts(access.org.pk, ids)
    shown = {}
    for stage in visible:
        document = documents.get(stage.pk) or {}
        spending = {**DEFAULTS["spending"], **(document.get("spending") or {})}
        budget = Decimal(spending["monthly_budget"]) if spending["monthly_budget"] is not None else None
        spent = Decimal(totals.get(stage.pk) or 0)
        spend = {
            "month": month,
            "budget": money(budget) if budget is not None else None,
            "spent": money(spent),
            "ratio": ratio_of(spent, budget),
            "alert_at": spending["alert_at"],
            "exhausted": budget is not None and spent >= budget,
        }
        shown[stage.pk] = render_to_string(
            "rollouts/_stage_status.html",
            {
                "stage": stage,
                "spend": spend,
                "bar": spend_bar(spend),
                "freeze": freeze_status(stage, document.get("freeze_windows") or []),
                "alerts": alerts.get(stage.pk, []),
                "org": access.org,
            },
        )
    return shown
