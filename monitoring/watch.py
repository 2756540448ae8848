"""The watcher: each agent's live version against its stage's thresholds.

Every tick (MONITORING_TICK_SECONDS, Celery beat) each org's turns are rolled up, then
each live agent in a stage with thresholds is read when due: every
MONITORING_WATCH_SECONDS within MONITORING_WATCH_HOURS of a release (or while one is in
progress), every MONITORING_EVALUATE_SECONDS otherwise. Each metric over the last
MONITORING_ALERT_WINDOW_SECONDS of live traffic opens or updates its alert past a level,
and resolves it once back inside. Too few samples change nothing (a thin minute neither
opens nor resolves anything); a window with no traffic at all resolves.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Organization
from agents.models import Agent
from rollouts.models import ACTIVE_RELEASE_STATUSES, LiveSafety, Release, ReleaseStatus, StagePolicy

from . import metrics
from .models import Alert, RollupWatermark
from .rollup import metrics_rollup, watermark_of
from .services import alert_open_or_update, alert_resolve

# Metric → whether a larger value is worse. The stage policy's `thresholds` names these.
WORSE_WHEN_HIGHER = {
    "latency_p95_ms": True,
    "error_rate": True,
    "rating_avg": False,
    "tokens_per_turn_increase": True,
    "safety_violations": True,
}
SAFETY_CATEGORIES = ("violence", "sexual", "self_harm", "hate")
# tokens_per_turn_increase compares with the previous live version's last week.
BASELINE_DAYS = 7


@dataclass
class Reading:
    value: float | None  # None: too few samples to judge
    samples: int


def level_of(metric: str, value: float, levels: dict) -> tuple[str, float] | None:
    """(level, threshold) crossed by `value`, critical first; None inside both."""
    higher = WORSE_WHEN_HIGHER[metric]
    for level in ("critical", "warning"):
        threshold = levels.get(level)
        if threshold is None:
            continue
        if (value > threshold) if higher else (value < threshold):
            return level, threshold
    return None


def _sources() -> list[str]:
    return [s for s in settings.MONITORING_ALERT_SOURCES.split(",") if s]


def readings(agent: Agent, *, now: datetime, baseline_version: int | None, safety: int) -> dict[str, Reading]:
    """Each threshold metric of the agent's live version over the alert window."""
    window = timedelta(seconds=settings.MONITORING_ALERT_WINDOW_SECONDS)
    least = settings.MONITORING_MIN_SAMPLES
    version = agent.live_version
    t = metrics.totals(
        org_id=agent.org_id,
        start=now - window,
        end=now + timedelta(minutes=1),
        sources=_sources(),
        agent_id=agent.pk,
        version=version,
    )
    latency = t.latency(0.95) if t.latency_count >= least else None
    found = {
        "latency_p95_ms": Reading(latency, t.latency_count),
        "error_rate": Reading(t.error_rate if t.turns >= least else None, t.turns),
        "rating_avg": Reading(
            t.rating_avg if t.rating_count >= settings.MONITORING_MIN_RATINGS else None, t.rating_count
        ),
        "safety_violations": Reading(float(safety), t.turns),
    }
    increase = None
    if baseline_version is not None and t.turns >= least:
        base = metrics.totals(
            org_id=agent.org_id,
            start=now - timedelta(days=BASELINE_DAYS),
            end=now + timedelta(minutes=1),
            sources=_sources(),
            agent_id=agent.pk,
            version=baseline_version,
        )
        if base.turns >= least and base.tokens_per_turn:
            increase = round(t.tokens_per_turn / base.tokens_per_turn - 1, 4)
    found["tokens_per_turn_increase"] = Reading(increase, t.turns)
    return found


def _due(mark: RollupWatermark, agents, watched: set, now: datetime) -> list[Agent]:
    due = []
    for agent in agents:
        last = mark.evaluated.get(str(agent.pk))
        every = (
            settings.MONITORING_WATCH_SECONDS if agent.pk in watched else settings.MONITORING_EVALUATE_SECONDS
        )
        # A tick's own jitter must not skip a due agent: a little early counts as due.
        if last is None or (now - datetime.fromisoformat(last)).total_seconds() >= every * 0.9:
            due.append(agent)
    return due


def thresholds_check(*, org: Organization, now: datetime | None = None, force: bool = False) -> list[dict]:
    """Read the due agents' thresholds; what happened to each alert, for logs and tests."""
    now = now or timezone.now()
    policies = {
        stage_id: (document or {}).get("thresholds") or {}
        for stage_id, document in StagePolicy.objects.for_org(org).values_list("stage_id", "document")
    }
    agents = list(
        Agent.objects.for_org(org)
        .filter(archived_at__isnull=True, live_version__isnull=False)
        .select_related("stage")
    )
    open_alerts = {
        (a.agent_id, a.metric)
        for a in Alert.objects.for_org(org).filter(
            resolved_at__isnull=True, agent__isnull=False, metric__in=list(WORSE_WHEN_HIGHER)
        )
    }
    # Agents to read: thresholds in their stage, or an open alert left to resolve.
    agents = [a for a in agents if policies.get(a.stage_id) or any(k[0] == a.pk for k in open_alerts)]
    if not agents:
        return []
    ids = [a.pk for a in agents]
    recent = now - timedelta(hours=settings.MONITORING_WATCH_HOURS)
    releases = list(
        Release.objects.for_org(org)
        .filter(agent_id__in=ids)
        .filter(
            # The baseline's traffic is read over the last 7 days, so an older release
            # cannot give one: this keeps the query to the recent releases.
            Q(status__in=[s.value for s in ACTIVE_RELEASE_STATUSES])
            | Q(status=ReleaseStatus.SUCCEEDED, finished_at__gte=now - timedelta(days=BASELINE_DAYS))
        )
        .order_by("agent_id", "-created_at")
        .values_list("agent_id", "status", "finished_at", "stable_version", "candidate_version")
    )
    watched, baseline = set(), {}
    live_of = {a.pk: a.live_version for a in agents}
    for agent_id, status, finished_at, stable, candidate in releases:
        if status in ACTIVE_RELEASE_STATUSES or (finished_at and finished_at >= recent):
            watched.add(agent_id)
        if status == ReleaseStatus.SUCCEEDED and candidate == live_of[agent_id] and stable is not None:
            baseline.setdefault(agent_id, stable)
    mark = watermark_of(org.pk)
    due = agents if force else _due(mark, agents, watched, now)
    if not due:
        return []
    safety = {
        (s.agent_id, s.version): sum(getattr(s, c) for c in SAFETY_CATEGORIES)
        for s in LiveSafety.objects.for_org(org).filter(agent_id__in=[a.pk for a in due])
    }
    outcomes = []
    for agent in due:
        thresholds = policies.get(agent.stage_id) or {}
        found = readings(
            agent,
            now=now,
            baseline_version=baseline.get(agent.pk),
            safety=safety.get((agent.pk, agent.live_version), 0),
        )
        for metric in WORSE_WHEN_HIGHER:
            is_open = (agent.pk, metric) in open_alerts
            outcomes.append(_apply(org, agent, metric, thresholds.get(metric), found[metric], is_open))
    with transaction.atomic():
        mark = RollupWatermark.objects.for_org(org).select_for_update().get(pk=mark.pk)
        mark.evaluated.update({str(a.pk): now.isoformat() for a in due})
        mark.save(update_fields=["evaluated", "updated_at"])
    return [o for o in outcomes if o]


def _apply(
    org, agent: Agent, metric: str, levels: dict | None, reading: Reading, is_open: bool
) -> dict | None:
    stage = agent.stage
    if not levels:
        if is_open:  # the threshold was removed from the policy
            alert_resolve(org=org, stage=stage, metric=metric, agent=agent, reason="threshold removed")
            return {"agent": agent.pk, "metric": metric, "action": "resolved"}
        return None
    if reading.value is None:
        if is_open and reading.samples == 0:
            alert_resolve(org=org, stage=stage, metric=metric, agent=agent, reason="no traffic in the window")
            return {"agent": agent.pk, "metric": metric, "action": "resolved"}
        return None
    crossed = level_of(metric, reading.value, levels)
    if crossed is None:
        if is_open:
            alert_resolve(org=org, stage=stage, metric=metric, agent=agent, reason="back within threshold")
            return {"agent": agent.pk, "metric": metric, "action": "resolved"}
        return None
    level, threshold = crossed
    _, opened = alert_open_or_update(
        org=org,
        stage=stage,
        metric=metric,
        level=level,
        value=Decimal(str(reading.value)),
        threshold=Decimal(str(threshold)),
        agent=agent,
        version=agent.live_version,
        details={"samples": reading.samples, "window_seconds": settings.MONITORING_ALERT_WINDOW_SECONDS},
    )
    return {"agent": agent.pk, "metric": metric, "action": "opened" if opened else "updated", "level": level}


def org_tick(*, org_id, now: datetime | None = None) -> dict:
    """One org's tick: roll up, then read the due thresholds."""
    org = Organization.objects.filter(pk=org_id, archived_at__isnull=True).first()
    if org is None:
        return {"rolled_up": 0, "alerts": []}
    rolled, more = 0, True
    while more:  # a backlog (a worker that was down) is read in batches, all in this tick
        read, more = metrics_rollup(org_id=org.pk, now=now)
        rolled += read
    return {"rolled_up": rolled, "alerts": thresholds_check(org=org, now=now)}
