"""Stage thresholds → alerts: opened once, updated while the condition lasts, resolved
once; levels, samples, baselines, and the shorter interval after a release."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import Stage
from agents.services.versions import version_save
from lifecycle.audit import AuditEvent
from monitoring.models import Alert
from monitoring.rollup import metrics_rollup
from monitoring.watch import level_of, org_tick, thresholds_check
from rollouts.models import LiveSafety
from rollouts.policy import stage_policy_update
from tests.factories import owner_access

from .helpers import converse, live_agent

ERROR = {"type": "error", "code": "tool_failed", "message": "boom"}


@pytest.fixture
def tight(settings):
    settings.MONITORING_MIN_SAMPLES = 5
    settings.MONITORING_MIN_RATINGS = 2
    settings.MONITORING_ALERT_WINDOW_SECONDS = 600


def thresholds(org, slug="development", **levels):
    stage = Stage.objects.for_org(org).get(slug=slug)
    stage_policy_update(access=owner_access(org), stage=stage, document={"thresholds": levels})


def traffic(agent, n, *, latency=100, error=None, at=None, rating=None, version=None, tokens=(10, 20)):
    at = at or timezone.now() - timedelta(minutes=2)
    for _ in range(n):
        converse(
            agent,
            at=at,
            replies=[(latency, error)],
            greeting=False,
            rating=rating,
            version=version,
            tokens=tokens,
        )


def tick(org, minutes=0):
    """A forced read (every agent due) at now + minutes, after rolling everything up."""
    now = timezone.now() + timedelta(minutes=minutes)
    while metrics_rollup(org_id=org.pk, now=now)[1]:
        pass
    return thresholds_check(org=org, now=now, force=True)


def audit_count(org, action):
    return AuditEvent.objects.for_org(org).filter(action=action).count()


def test_levels_worse_when_higher_or_lower():
    assert level_of("latency_p95_ms", 3500, {"warning": 3000, "critical": 5000}) == ("warning", 3000)
    assert level_of("latency_p95_ms", 5001, {"warning": 3000, "critical": 5000}) == ("critical", 5000)
    assert level_of("latency_p95_ms", 3000, {"warning": 3000}) is None  # "> 3 s" warns, 3 s does not
    assert level_of("rating_avg", 3.2, {"warning": 4.0, "critical": 3.5}) == ("critical", 3.5)
    assert level_of("rating_avg", 4.5, {"warning": 4.0}) is None
    assert level_of("safety_violations", 1, {"warning": 0}) == ("warning", 0)


def test_latency_alert_opens_once_updates_and_resolves_once(world, tight):
    agent = live_agent(world.acme)
    thresholds(world.acme, latency_p95_ms={"warning": 3000, "critical": 5000})
    traffic(agent, 10, latency=3600)
    outcome = tick(world.acme)
    assert [(o["metric"], o["action"], o["level"]) for o in outcome] == [
        ("latency_p95_ms", "opened", "warning")
    ]
    alert = Alert.objects.for_org(world.acme).get()
    assert (alert.agent_id, alert.version, alert.metric, alert.level) == (
        agent.pk,
        1,
        "latency_p95_ms",
        "warning",
    )
    assert Decimal(3000) < alert.value <= Decimal(4000)
    # The condition lasts and worsens: the same alert, now critical; nothing new opened.
    traffic(agent, 30, latency=7000)
    outcome = tick(world.acme)
    assert [(o["action"], o["level"]) for o in outcome] == [("updated", "critical")]
    assert Alert.objects.for_org(world.acme).count() == 1
    assert audit_count(world.acme, "alert.opened") == 1
    alert.refresh_from_db()
    assert alert.level == "critical" and alert.resolved_at is None
    # Ticks while it lasts never flood.
    for _ in range(3):
        tick(world.acme)
    assert audit_count(world.acme, "alert.opened") == 1
    # Later, healthy traffic only in the window: resolved once.
    later = timezone.now() + timedelta(minutes=20)
    traffic(agent, 10, latency=200, at=later - timedelta(minutes=2))
    outcome = tick(world.acme, minutes=20)
    assert [o["action"] for o in outcome] == ["resolved"]
    assert tick(world.acme, minutes=20) == []
    alert.refresh_from_db()
    assert alert.resolved_at is not None
    assert audit_count(world.acme, "alert.resolved") == 1


def test_error_rate_and_rating_and_too_few_samples(world, tight):
    agent = live_agent(world.acme)
    thresholds(world.acme, error_rate={"warning": 0.005, "critical": 0.01}, rating_avg={"warning": 4.0})
    traffic(agent, 3, error=ERROR)  # under MIN_SAMPLES turns: nothing judged
    assert tick(world.acme) == []
    traffic(agent, 3, rating=1)
    traffic(agent, 4, rating=3)
    found = {o["metric"]: o for o in tick(world.acme)}
    assert found["error_rate"]["level"] == "critical"  # 3 errors in 10 turns
    assert found["rating_avg"]["level"] == "warning"  # (3·1 + 4·3) / 7 ≈ 2.14 < 4.0
    alert = Alert.objects.for_org(world.acme).get(metric="error_rate")
    assert alert.value == Decimal("0.3") and alert.threshold == Decimal("0.01")


def test_no_traffic_resolves_and_removed_threshold_resolves(world, tight):
    agent = live_agent(world.acme)
    thresholds(world.acme, error_rate={"warning": 0.1})
    traffic(agent, 10, error=ERROR)
    assert [o["action"] for o in tick(world.acme)] == ["opened"]
    assert [o["action"] for o in tick(world.acme, minutes=60)] == ["resolved"]  # nothing in the window
    traffic(agent, 10, error=ERROR)
    assert [o["action"] for o in tick(world.acme)] == ["opened"]
    thresholds(world.acme)  # the policy no longer has thresholds
    assert [o["action"] for o in tick(world.acme)] == ["resolved"]
    assert Alert.objects.for_org(world.acme).filter(resolved_at__isnull=True).count() == 0


def test_tokens_per_turn_against_the_previous_live_version(world, tight):
    agent = live_agent(world.acme)
    thresholds(world.acme, tokens_per_turn_increase={"warning": 0.5})
    traffic(agent, 10, tokens=(10, 10), at=timezone.now() - timedelta(hours=2))  # v1: 20 per turn
    version_save(access=owner_access(world.acme), agent=agent, changelog="wordier")
    agent.refresh_from_db()
    assert agent.live_version == 2
    traffic(agent, 10, tokens=(20, 20))  # v2: 40 per turn, +100 %
    [outcome] = tick(world.acme)
    assert (outcome["metric"], outcome["level"]) == ("tokens_per_turn_increase", "warning")
    assert Alert.objects.for_org(world.acme).get().value == Decimal("1")


def test_safety_violations_of_the_live_version(world, tight):
    agent = live_agent(world.acme)
    thresholds(world.acme, safety_violations={"warning": 0, "critical": 5})
    LiveSafety.objects.create(org=world.acme, agent=agent, stage=agent.stage, version=1, scored=40, hate=2)
    [outcome] = tick(world.acme)
    assert (outcome["metric"], outcome["level"]) == ("safety_violations", "warning")


def test_recently_released_agents_are_read_more_often(world, tight, settings):
    settings.MONITORING_WATCH_SECONDS = 60
    settings.MONITORING_EVALUATE_SECONDS = 300
    fresh = live_agent(world.acme, "Fresh")  # its release finished just now
    thresholds(world.acme, error_rate={"warning": 0.1})
    now = timezone.now()
    assert thresholds_check(org=world.acme, now=now) == []  # read (nothing to say), and marked
    from monitoring.models import RollupWatermark

    mark = RollupWatermark.objects.for_org(world.acme).get()
    assert str(fresh.pk) in mark.evaluated
    traffic(fresh, 10, error=ERROR)
    org_tick(org_id=world.acme.pk, now=now + timedelta(seconds=30))  # not due yet
    assert Alert.objects.for_org(world.acme).count() == 0
    org_tick(org_id=world.acme.pk, now=now + timedelta(seconds=61))  # due within a minute
    assert Alert.objects.for_org(world.acme).count() == 1
    # Past the watch period, the same agent waits the normal interval.
    settings.MONITORING_WATCH_HOURS = 0
    later = now + timedelta(seconds=130)
    mark.refresh_from_db()
    assert thresholds_check(org=world.acme, now=later) == []  # read 69 s ago: not due at 300 s


def test_alerts_reach_the_webhooks_outbox_once(world, tight):
    from webhooks.models import OutboxEvent, Webhook
    from webhooks.services.webhooks import webhook_create

    webhook_create(
        access=owner_access(world.acme),
        url="http://127.0.0.1:9/hook",
        events=["alert.*"],
        secret="a-signing-secret-value",
    )
    agent = live_agent(world.acme)
    thresholds(world.acme, error_rate={"warning": 0.1})
    traffic(agent, 10, error=ERROR)
    tick(world.acme)
    tick(world.acme)
    tick(world.acme, minutes=60)
    events = list(OutboxEvent.objects.for_org(world.acme).values_list("event", flat=True))
    assert sorted(e for e in events if e.startswith("alert.")) == ["alert.opened", "alert.resolved"]
    assert Webhook.objects.for_org(world.acme).count() == 1


def test_the_beat_task_ticks_every_org(world, tight, settings):
    from monitoring.tasks import monitoring_tick

    settings.MONITORING_ROLLUP_SETTLE_SECONDS = 0
    mine, theirs = live_agent(world.acme), live_agent(world.globex)
    thresholds(world.acme, error_rate={"warning": 0.1})
    thresholds(world.globex, error_rate={"warning": 0.1})
    traffic(mine, 10, error=ERROR)
    traffic(theirs, 10)
    monitoring_tick()  # eager here: each org's task runs in turn
    assert Alert.objects.for_org(world.acme).filter(agent=mine, resolved_at__isnull=True).count() == 1
    assert Alert.objects.for_org(world.globex).count() == 0
    monitoring_tick()
    assert Alert.objects.for_org(world.acme).count() == 1
