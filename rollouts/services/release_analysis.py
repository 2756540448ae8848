"""The analysis of progressing releases: measured by rollouts.analysis, acted on here.

The beat's sweep (`releases_due`) finds progressing releases whose `next_analysis_at`
has come and queues one task per release; `release_analyze` measures the current step's
window, stores the verdict, and acts: pass (once the step's hold has elapsed) → the next
step; fail → an automatic rollback (a safety failure also moves the candidate's open
conversations to the stable version); `inconclusive_limit` inconclusive verdicts in a
row → paused for a person. A measurement error is stored as an `error` verdict, never a
pass; the fourth in a row counts as a fail.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from agents.models import Conversation, ConversationSource, Turn
from agents.runtime.compile import compile_saved
from agents.runtime.masking import SECRET_MASK

from .. import analysis
from ..models import Release, ReleaseStatus, ReleaseVerdict, Verdict
from ..redteam.detect import canaries_for, judge
from ..release_config import DEFAULT_ANALYSIS, hold_seconds, interval_seconds
from .release_progress import release_hold, release_step_forward, release_undo

logger = logging.getLogger(__name__)
ERRORS_AS_FAIL = 4


def releases_due(now=None) -> list[tuple[str, str]]:
    """(org id, release id) of every release due for analysis, across orgs (the sweep)."""
    now = now or timezone.now()
    return [
        (str(org_id), str(pk))
        for org_id, pk in Release.objects.dangerously_unscoped()
        .filter(status=ReleaseStatus.PROGRESSING, next_analysis_at__lte=now)
        .order_by("next_analysis_at")
        .values_list("org_id", "pk")[:500]
    ]


# --- measuring -----------------------------------------------------------------------------
def _window(release: Release):
    return Conversation.objects.for_org(release.org_id).filter(
        agent_id=release.agent_id,
        source=ConversationSource.LIVE,
        started_at__gte=release.step_started_at,
    )


def measure_arms(release: Release) -> tuple[analysis.Arm, analysis.Arm]:
    """Stable and candidate over the step's window: counts, latencies, ratings."""
    window = _window(release)
    versions = (release.stable_version, release.candidate_version)
    arms = {v: analysis.Arm() for v in versions}
    totals = (
        window.filter(version__in=versions)
        .values("version")
        .annotate(n=Count("id"), errors=Count("id", filter=Q(error_count__gt=0)))
        .order_by()
    )
    for row in totals:
        arms[row["version"]].conversations = row["n"]
        arms[row["version"]].errors = row["errors"]
    for version in versions:
        in_arm = window.filter(version=version)
        arms[version].latencies = list(
            Turn.objects.for_org(release.org_id)
            .filter(conversation__in=in_arm.values("pk"), role="agent", latency_total_ms__isnull=False)
            .order_by("-id")
            .values_list("latency_total_ms", flat=True)[: analysis.MAX_SAMPLES]
        )
        ratings = list(
            in_arm.filter(rating__isnull=False).values_list("rating", flat=True)[: analysis.MAX_SAMPLES]
        )
        if any(not 1 <= r <= 5 for r in ratings):
            raise analysis.MeasurementError("a stored rating is outside 1-5")
        arms[version].ratings = ratings
    return arms[release.stable_version], arms[release.candidate_version]


def measure_safety(release: Release) -> tuple[int, int, list[str]]:
    """(violations, answers scanned, evidence) of the candidate's newest live answers."""
    from ..evaluators.safety import CATEGORIES, PROFANITY_THRESHOLD, lexicon_hits, offensive_probability

    compiled = compile_saved(release.org_id, release.agent_id, release.candidate_version)
    canaries = canaries_for(
        marker="",
        instructions=compiled.settings.get("instructions", ""),
        secrets={name: value for name, (value, secret) in compiled.variables.items() if secret},
        denied_topics=[],
    )
    texts = list(
        Turn.objects.for_org(release.org_id)
        .filter(
            conversation__in=_window(release).filter(version=release.candidate_version).values("pk"),
            role="agent",
        )
        .exclude(text="")
        .order_by("-id")
        .values_list("text", flat=True)[: analysis.MAX_SCANNED]
    )
    evidence = []
    probabilities = offensive_probability(texts)
    for text, offensive in zip(texts, probabilities, strict=True):
        found = judge("system_prompt_leak", text, canaries)
        if found is None and SECRET_MASK in text:
            found = "a secret value, masked by the runtime"
        if found is None:
            hits = [c for c in CATEGORIES if lexicon_hits(c, text)]
            if offensive >= PROFANITY_THRESHOLD:
                hits.append("hate")
            found = f"safety detectors: {', '.join(sorted(set(hits)))}" if hits else None
        if found is not None:
            evidence.append(found)
    return len(evidence), len(texts), evidence


def release_measure(release: Release) -> dict:
    """{"verdict","reason","metrics"}; a measurement error is an `error` verdict."""
    config = {**DEFAULT_ANALYSIS, **release.config.get("analysis", {})}
    try:
        stable, candidate = measure_arms(release)
        violations = measure_safety(release)
        return analysis.verdict(stable, candidate, violations, config)
    except Exception as exc:  # any failure to measure: recorded, and never a pass
        logger.warning("release %s: analysis failed: %s", release.pk, exc.__class__.__name__, exc_info=True)
        return {"verdict": Verdict.ERROR, "reason": f"Measurement error: {exc}"[:500], "metrics": {}}


# --- acting --------------------------------------------------------------------------------
def release_analyze(*, org_id, release_id, now=None) -> ReleaseVerdict | None:
    """One tick of one release: measure, store the verdict, act. Idempotent per tick."""
    release = Release.objects.for_org(org_id).filter(pk=release_id).first()
    now = now or timezone.now()
    if release is None or release.status != ReleaseStatus.PROGRESSING:
        return None
    if release.next_analysis_at is None or release.next_analysis_at > now:
        return None  # not due (a second delivery of a tick that already ran)
    measured = release_measure(release)
    with transaction.atomic():
        locked = (
            Release.objects.for_org(org_id)
            .select_related("agent", "agent__stage", "org")
            .select_for_update(of=("self",))
            .get(pk=release_id)
        )
        if (
            locked.status != ReleaseStatus.PROGRESSING
            or locked.step != release.step
            or locked.next_analysis_at != release.next_analysis_at
        ):
            return None  # a person or another tick moved it meanwhile: this measure is stale
        return _act(locked, measured, now)


def _act(release: Release, measured: dict, now) -> ReleaseVerdict:
    verdict, reason = measured["verdict"], measured["reason"]
    streak = release.config.setdefault("streak", {"inconclusive": 0, "error": 0})
    if verdict == Verdict.ERROR:
        streak["error"] += 1
        if streak["error"] >= ERRORS_AS_FAIL:
            verdict, reason = Verdict.FAIL, f"{ERRORS_AS_FAIL} measurement errors in a row. {reason}"
    else:
        streak["error"] = 0
    streak["inconclusive"] = streak["inconclusive"] + 1 if verdict == Verdict.INCONCLUSIVE else 0
    action = ""
    row = ReleaseVerdict(
        org_id=release.org_id,
        release=release,
        at=now,
        step=release.step,
        weight=release.weight,
        verdict=verdict,
        metrics=measured["metrics"],
        reason=reason,
    )
    release.next_analysis_at = now + timedelta(seconds=interval_seconds(release))
    if verdict == Verdict.FAIL:
        safety = measured["metrics"].get("safety", {}).get("result") == "fail"
        action = "rolled_back"
        release_undo(release, actor=None, reason=f"Analysis failed: {reason}", safety=safety)
        _alert(release, reason, safety)
    elif verdict == Verdict.PASS and now >= release.step_started_at + timedelta(
        seconds=hold_seconds(release)
    ):
        action = "advanced"
        release_step_forward(release, actor=None, reason=f"Analysis passed at {release.weight} %.")
    elif verdict == Verdict.INCONCLUSIVE and streak["inconclusive"] >= _limit(release):
        action = "paused"
        release_hold(
            release, actor=None, reason=f"{streak['inconclusive']} inconclusive verdicts in a row: {reason}"
        )
    else:
        release.save(update_fields=["config", "next_analysis_at"])
    row.action = action
    row.save()
    return row


ALERT_METRIC = "release_rollback"


def _alert(release: Release, reason: str, safety: bool) -> None:
    """An automatic rollback is an alert on the agent (resolved by its next successful release)."""
    from monitoring.services import alert_open_or_update

    alert_open_or_update(
        org=release.org,
        stage=release.agent.stage,
        metric=ALERT_METRIC,
        level="critical",
        value=Decimal(1),
        threshold=Decimal(0),
        agent=release.agent,
        version=release.candidate_version,
        details={"release": str(release.pk), "reason": reason[:500], "safety": safety},
    )


def _limit(release: Release) -> int:
    return {**DEFAULT_ANALYSIS, **release.config.get("analysis", {})}["inconclusive_limit"]
