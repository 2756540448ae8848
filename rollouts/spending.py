"""A stage's spending: conversation costs per calendar month (UTC) against its budget.

`stage_spend` is the report (GET …/stages/{slug}/spend/): one aggregate over the
`conversation_spend` index, grouped by agent and source. `budget_guard` is asked when a
conversation starts (the gateway, the console): it reads the month-to-date total from
the cache (SPEND_CACHE_SECONDS), so a busy stage sums its spend at most that often and
never per message. Each fresh sum also opens, updates or resolves the stage's `spend`
alert: warning at `alert_at` of the budget, critical at 100 %.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Sum
from django.utils import timezone

from accounts.models import Stage
from agents.models import Conversation
from lifecycle.errors import BudgetExhausted, Invalid

from .models import StagePolicy
from .policy import DEFAULTS, stored_document

MONTH = re.compile(r"^([0-9]{4})-(0[1-9]|1[0-2])$")
CENT = Decimal("0.01")
MICRO = Decimal("0.000001")  # the precision costs are stored with
METRIC = "spend"


def money(value: Decimal) -> str:
    return str(value.quantize(CENT, rounding=ROUND_HALF_UP))


def month_bounds(month: str | None = None, now: datetime | None = None) -> tuple[str, datetime, datetime]:
    """("YYYY-MM", first instant, first instant of the next month), in UTC."""
    if month is None:
        now = (now or timezone.now()).astimezone(UTC)
        year, number = now.year, now.month
    else:
        match = MONTH.match(month) if isinstance(month, str) else None
        if match is None or int(match.group(1)) < 1:
            raise Invalid(fields={"month": ['Expected a month as "YYYY-MM", such as "2026-03".']})
        year, number = int(match.group(1)), int(match.group(2))
    start = datetime(year, number, 1, tzinfo=UTC)
    end = datetime(year + 1, 1, 1, tzinfo=UTC) if number == 12 else datetime(year, number + 1, 1, tzinfo=UTC)
    return f"{year:04d}-{number:02d}", start, end


def spending_policy(stage: Stage) -> dict:
    """The stage's `spending` part, defaults filled in (budget None: no budget)."""
    return {**DEFAULTS["spending"], **(stored_document(stage).get("spending") or {})}


def ratio_of(spent: Decimal, budget: Decimal | None) -> float | None:
    if budget is None:
        return None
    if budget == 0:
        return 1.0  # nothing may be spent: the budget is used up from the start
    return round(float(spent / budget), 4)


def _month(stage: Stage, start: datetime, end: datetime):
    return (
        Conversation.objects.for_org(stage.org_id)
        .filter(stage_id=stage.pk, started_at__gte=start, started_at__lt=end)
        .order_by()
    )


def stage_spend(stage: Stage, month: str | None = None) -> dict:
    """The month's spend of the stage, by agent (archived ones included) and by source."""
    label, start, end = month_bounds(month)
    spending = spending_policy(stage)
    budget = Decimal(spending["monthly_budget"]) if spending["monthly_budget"] is not None else None
    rows = (
        _month(stage, start, end)
        .values("agent_id", "source", "agent__name", "agent__archived_at")
        .annotate(spent=Sum("cost"), conversations=Count("*"))
    )
    agents: dict = {}
    by_source: dict[str, Decimal] = {}
    total = Decimal(0)
    for row in rows:
        spent = row["spent"] or Decimal(0)
        total += spent
        by_source[row["source"]] = by_source.get(row["source"], Decimal(0)) + spent
        entry = agents.setdefault(
            row["agent_id"],
            {
                "agent": {"id": str(row["agent_id"]), "name": row["agent__name"]},
                "archived": row["agent__archived_at"] is not None,
                "spent": Decimal(0),
                "conversations": 0,
                "by_source": {},
            },
        )
        entry["spent"] += spent
        entry["conversations"] += row["conversations"]
        entry["by_source"][row["source"]] = money(spent)
    by_agent = sorted(agents.values(), key=lambda e: (-e["spent"], e["agent"]["name"], e["agent"]["id"]))
    for entry in by_agent:
        entry["share"] = round(float(entry["spent"] / total), 4) if total else 0.0
        entry["spent"] = money(entry["spent"])
    return {
        "stage": stage.slug,
        "month": label,
        "budget": money(budget) if budget is not None else None,
        "spent": money(total),
        "ratio": ratio_of(total, budget),
        "alert_at": spending["alert_at"],
        "block": spending["block"],
        "exhausted": budget is not None and total >= budget,
        "by_source": {source: money(spent) for source, spent in sorted(by_source.items())},
        "by_agent": by_agent,
    }


# --- the budget on conversation start ---------------------------------------------------
def _state_key(stage_id, month: str) -> str:
    return f"spend-state:{stage_id}:{month}"


def spend_cache_clear(stage: Stage) -> None:
    """Forget the cached month-to-date state (a policy change must act at once)."""
    cache.delete(_state_key(stage.pk, month_bounds()[0]))


def budget_state(stage: Stage, *, refresh: bool = False) -> dict:
    """{"month","budget","spent","alert_at","block","name","slug"} of the current month, cached.

    `budget` and `spent` are decimal strings (budget None: no budget). Computing it afresh
    also brings the stage's spend alert up to date.
    """
    month, start, end = month_bounds()
    key = _state_key(stage.pk, month)
    state = None if refresh else cache.get(key)
    if state is None:
        stage = Stage.objects.for_org(stage.org_id).select_related("org").get(pk=stage.pk)
        spending = spending_policy(stage)
        state = {
            "month": month,
            "budget": spending["monthly_budget"],
            "alert_at": spending["alert_at"],
            "block": list(spending["block"]),
            "name": stage.name,
            "slug": stage.slug,
            "spent": "0",
        }
        if state["budget"] is not None:
            spent = _month(stage, start, end).aggregate(total=Sum("cost"))["total"] or Decimal(0)
            state["spent"] = str(Decimal(spent).quantize(MICRO))  # SQLite sums come back as floats
        spend_alert_sync(stage=stage, state=state)
        cache.set(key, state, settings.SPEND_CACHE_SECONDS)
    return state


def budget_guard(*, stage: Stage, source: str) -> None:
    """402 `budget_exhausted` when the month's budget is spent and `source` is blocked."""
    state = budget_state(stage)
    if state["budget"] is None or source not in state["block"]:
        return
    budget, spent = Decimal(state["budget"]), Decimal(state["spent"])
    if spent >= budget:
        raise BudgetExhausted(
            f"The monthly budget of {state['name']} ({money(budget)}) is spent: "
            f"{money(spent)} in {state['month']}. New {source} conversations are refused "
            "until the month ends or the budget is raised.",
            details={
                "stage": state["slug"],
                "month": state["month"],
                "budget": money(budget),
                "spent": money(spent),
                "source": source,
            },
        )


def conversation_budget_guard(*, agent, source: str) -> None:
    """The CONVERSATION_GUARDS entry (agents.hooks): the console's starts in the agent's stage."""
    budget_guard(stage=Stage(pk=agent.stage_id, org_id=agent.org_id), source=source)


def spend_alert_sync(*, stage: Stage, state: dict) -> None:
    """Open, update or resolve the stage's spend alert from a fresh month-to-date state.

    One alert per stage and month: an alert still open from an earlier month is resolved
    before this month's opens.
    """
    from monitoring.models import Alert
    from monitoring.services import alert_open_or_update, alert_resolve

    budget = Decimal(state["budget"]) if state["budget"] is not None else None
    spent = Decimal(state["spent"])
    ratio = ratio_of(spent, budget)
    open_alert = (
        Alert.objects.for_org(stage.org_id)
        .filter(stage_id=stage.pk, agent__isnull=True, metric=METRIC, resolved_at__isnull=True)
        .first()
    )
    crossed = ratio is not None and ratio >= state["alert_at"]
    if open_alert is not None and (not crossed or open_alert.details.get("month") != state["month"]):
        reason = "a new month" if open_alert.details.get("month") != state["month"] else "under the threshold"
        alert_resolve(org=stage.org, stage=stage, metric=METRIC, reason=reason)
    if not crossed:
        return
    critical = spent >= budget
    alert_open_or_update(
        org=stage.org,
        stage=stage,
        metric=METRIC,
        level="critical" if critical else "warning",
        value=spent,
        threshold=budget if critical else (budget * Decimal(str(state["alert_at"]))).quantize(CENT),
        details={"month": state["month"], "budget": money(budget), "ratio": ratio},
    )


# --- the sweep ----------------------------------------------------------------------------
def stages_to_watch() -> list[tuple[str, str]]:
    """(org id, stage id) of every stage with a budget or an open spend alert, across orgs:
    the beat's sweep keeps their alerts current when no conversation starts (spend grows
    with messages too, and a month ends on its own)."""
    from monitoring.models import Alert

    found = {
        (str(org_id), str(stage_id))
        for org_id, stage_id, document in StagePolicy.objects.dangerously_unscoped()
        .filter(document__has_key="spending")
        .values_list("org_id", "stage_id", "document")
        if (document.get("spending") or {}).get("monthly_budget") is not None
    }
    found |= {
        (str(org_id), str(stage_id))
        for org_id, stage_id in Alert.objects.dangerously_unscoped()
        .filter(metric=METRIC, resolved_at__isnull=True)
        .values_list("org_id", "stage_id")
    }
    return sorted(found)


def stage_spend_check(*, org_id, stage_id) -> None:
    """Sum the stage's month afresh (its alert follows); quietly nothing if it is gone."""
    stage = Stage.objects.for_org(org_id).filter(pk=stage_id).first()
    if stage is not None:
        budget_state(stage, refresh=True)
