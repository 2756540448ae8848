"""Monitoring on real processes: Celery beat sends the tick, a real worker rolls the
turns up and opens the alert, and the org's webhook receives alert.opened, signed."""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Stage
from monitoring.models import Alert, MetricRollup
from monitoring.tests.helpers import converse, live_agent
from rollouts.policy import stage_policy_update
from tests.factories import make_org, owner_access
from tests.http_servers import Recorder
from tests.processes import wait_for
from webhooks.services.webhooks import webhook_create

from .conftest import BIN, Proc

pytestmark = pytest.mark.django_db(transaction=True)
SECRET = "services-secret-0123456789"
ERROR = {"type": "error", "code": "tool_failed", "message": "boom"}


@pytest.fixture
def beat(services_env, broker, tmp_path):
    """Celery beat as deployed, ticking monitoring every second."""
    env = {**services_env, "MONITORING_TICK_SECONDS": "1"}
    argv = [
        str(BIN / "celery"),
        "-A",
        "lifecycle",
        "beat",
        "--loglevel=INFO",
        "-s",
        str(tmp_path / "schedule"),
    ]
    proc = Proc("beat", argv, env).start()
    yield proc
    proc.stop()


def test_beat_and_a_worker_roll_up_and_open_an_alert(worker_factory, beat):
    org = make_org()
    agent = live_agent(org, "Checkout")
    development = Stage.objects.for_org(org).get(slug="development")
    stage_policy_update(
        access=owner_access(org),
        stage=development,
        document={"thresholds": {"error_rate": {"warning": 0.005, "critical": 0.01}}},
    )
    for i in range(8):
        converse(agent, at=timezone.now() - timedelta(minutes=1), replies=[(150, ERROR if i < 2 else None)])
    with Recorder(lambda r, q: (200, {}, 0)) as server:
        webhook_create(access=owner_access(org), url=server.url + "/hook", events=["alert.*"], secret=SECRET)
        worker_factory(
            MONITORING_ROLLUP_SETTLE_SECONDS="0",
            MONITORING_MIN_SAMPLES="5",
            MONITORING_WATCH_SECONDS="1",
        )
        alert = wait_for(
            lambda: Alert.objects.for_org(org).filter(metric="error_rate", resolved_at__isnull=True).first(),
            90,
            0.5,
            "the error-rate alert",
        )
        wait_for(lambda: len(server.requests) >= 1, 60, 0.2, "alert.opened delivered")
        request = server.requests[0]
    # Two errors in 16 agent turns (each greeting is a turn): 0.125, past 0.01: critical.
    assert (alert.level, alert.version, alert.agent_id) == ("critical", 1, agent.pk)
    rows = list(MetricRollup.objects.for_org(org))
    assert sum(r.turns for r in rows) == 16 and sum(r.errors for r in rows) == 2
    assert sum(r.conversations for r in rows) == 8
    headers = {k.lower(): v for k, v in request["headers"].items()}
    expected = hmac.new(SECRET.encode(), request["raw"], hashlib.sha256).hexdigest()
    assert headers["x-lifecycle-signature"] == f"sha256={expected}"
    body = request["body"]
    assert body["event"] == "alert.opened" and body["data"]["metric"] == "error_rate"
    # It stays one alert while the condition lasts: the ticks go on, nothing new opens.
    before = Alert.objects.for_org(org).count()
    time.sleep(4)
    assert Alert.objects.for_org(org).count() == before == 1
    assert [r["body"]["event"] for r in server.requests] == ["alert.opened"]


def test_rollups_merge_into_their_minute_on_postgresql():
    """The PostgreSQL write-back (UPDATE ... FROM VALUES) adds to existing minute rows."""
    from monitoring import histogram
    from monitoring.rollup import metrics_rollup

    org = make_org()
    agent = live_agent(org, "Merge")
    at = timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=3)
    later = timezone.now() + timedelta(minutes=1)
    converse(agent, at=at, replies=[(120, None)])
    assert metrics_rollup(org_id=org.pk, now=later) == (3, False)
    converse(agent, at=at + timedelta(seconds=30), replies=[(2600, ERROR), (40, None)])
    assert metrics_rollup(org_id=org.pk, now=later) == (5, False)
    row = MetricRollup.objects.for_org(org).get()
    assert (row.conversations, row.turns, row.errors) == (2, 5, 1)
    assert (row.latency_count, row.latency_sum, row.tokens) == (3, 120 + 2600 + 40, 3 * 30)
    assert row.histogram[histogram.bucket_of(2600)] == 1 and sum(row.histogram) == 3
    assert str(row.cost) == "0.003000"
