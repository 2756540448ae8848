"""Rollups from hand-made conversations: exact counts, percentiles within the histogram's
resolution, idempotent runs, and the metrics endpoint (validation, tenancy, query count)."""

import random
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from agents.tests.helpers import AgentChildTests
from monitoring import histogram
from monitoring.api.metrics import AgentMetricsView
from monitoring.metrics import totals
from monitoring.models import MetricRollup, RollupWatermark
from monitoring.rollup import metrics_rollup
from tests.api_mixin import assert_envelope

from .helpers import converse, live_agent, minute

ERROR = {"type": "error", "code": "tool_failed", "message": "boom"}


class TestAgentMetricsTenancy(AgentChildTests):
    views = (AgentMetricsView,)
    list_url = "/api/v1/orgs/{org}/agents/{agent}/metrics/"
    reader = "viewer"
    listable = False


def url(agent, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"/api/v1/orgs/{agent.org.slug}/agents/{agent.pk}/metrics/?{query}"


def rollup(org, now=None):
    return metrics_rollup(org_id=org.pk, now=now or timezone.now() + timedelta(minutes=1))


def test_rollup_counts_exactly(world):
    agent = live_agent(world.acme, versions=2)
    t = minute(-10)
    # v2 (live): two conversations in one minute, one with an error; one rated 4, one 2.
    converse(agent, at=t, replies=[(120, None), (900, ERROR)], rating=4)
    converse(agent, at=t + timedelta(seconds=30), replies=[(300, None)], greeting=False, rating=2)
    # v1, a minute later; a console conversation; a draft run (never counted).
    converse(agent, at=t + timedelta(minutes=1), version=1, replies=[(2500, None)], tokens=(5, 5), cost="0.5")
    converse(agent, at=t, source="console", replies=[(50, None)])
    converse(agent, at=t, draft=True, replies=[(50, ERROR)])
    read, more = rollup(world.acme)
    assert not more and read == 5 + 2 + 3 + 3  # every turn but the draft run's
    rows = {(r.version, r.source, r.bucket): r for r in MetricRollup.objects.for_org(world.acme)}
    assert set(rows) == {(2, "live", t), (1, "live", t + timedelta(minutes=1)), (2, "console", t)}
    v2 = rows[(2, "live", t)]
    # Conversations count once (their turn 0); turns are agent replies (the greeting too);
    # latency leaves the greeting out.
    assert (v2.conversations, v2.turns, v2.errors) == (2, 3 + 1, 1)
    assert (v2.latency_count, v2.latency_sum) == (3, 120 + 900 + 300)
    assert v2.tokens == 3 * 30 and v2.cost == Decimal("0.003")
    assert sum(v2.histogram) == 3
    assert v2.histogram[histogram.bucket_of(120)] == 1 and v2.histogram[histogram.bucket_of(900)] == 1

    body = (
        world.client("viewer").get(url(agent, window="1h", bucket="5m", by="version", source="live")).json()
    )
    series = {s["version"]: s for s in body["series"]}
    assert set(series) == {1, 2}
    assert len(series[2]["buckets"]) in (12, 13)  # the window's buckets, aligned to 5 minutes
    filled = [b for b in series[2]["buckets"] if b["turns"]]
    assert len(filled) == 1
    b = filled[0]
    assert (b["conversations"], b["turns"], b["errors"], b["error_rate"]) == (2, 4, 1, 0.25)
    assert b["tokens"] == 90 and b["cost"] == "0.003000" and b["rating_avg"] == 3.0
    assert 300 - histogram.width_at(300) <= b["latency_p50_ms"] <= 300 + histogram.width_at(300)
    v1 = next(b for b in series[1]["buckets"] if b["turns"])
    assert (v1["conversations"], v1["turns"], v1["errors"], v1["error_rate"]) == (1, 2, 0, 0.0)
    assert v1["cost"] == "0.500000" and v1["rating_avg"] is None
    # An empty bucket is zeros, and nulls where a rate has no denominator.
    empty = next(b for b in series[2]["buckets"] if not b["turns"])
    assert empty["error_rate"] is None and empty["latency_p95_ms"] is None and empty["conversations"] == 0

    merged = world.client("viewer").get(url(agent, window="1h", bucket="1h", by="none")).json()["series"]
    assert [s["version"] for s in merged] == [None]
    total = [b for b in merged[0]["buckets"] if b["turns"]]
    assert sum(b["conversations"] for b in total) == 4  # with the console's


def test_percentiles_from_the_histogram_are_within_the_bucket_resolution(world):
    agent = live_agent(world.acme)
    rng = random.Random(7)
    latencies = [int(rng.lognormvariate(6.5, 0.6)) for _ in range(400)]
    t = minute(-30)
    for i, latency in enumerate(latencies):
        converse(agent, at=t + timedelta(minutes=i % 20), replies=[(latency, None)], greeting=False)
    rollup(world.acme)
    result = totals(org_id=world.acme.pk, start=t, end=t + timedelta(hours=1), agent_id=agent.pk)
    ordered = sorted(latencies)
    for q in (0.5, 0.95):
        exact = ordered[int(q * len(ordered)) - 1]
        assert abs(result.latency(q) - exact) <= histogram.width_at(exact), (q, exact, result.latency(q))
    assert result.latency_count == 400 and result.latency_sum == sum(latencies)


def test_histogram_percentile_edges():
    counts = histogram.empty()
    assert histogram.percentile(counts, 0.5) is None
    counts[histogram.bucket_of(2999)] = 10  # all in [2500, 3000)
    assert 2500 <= histogram.percentile(counts, 0.95) <= 3000
    counts = histogram.empty()
    counts[-1] = 1  # beyond the last edge
    assert histogram.percentile(counts, 0.5) >= histogram.EDGES[-1]


def test_rollup_is_incremental_and_never_counts_twice(world):
    agent = live_agent(world.acme)
    t = minute(-5)
    converse(agent, at=t, replies=[(100, None)])
    rollup(world.acme)
    assert rollup(world.acme) == (0, False)
    converse(agent, at=t + timedelta(seconds=20), replies=[(200, ERROR)])
    rollup(world.acme)
    row = MetricRollup.objects.for_org(world.acme).get()
    assert (row.conversations, row.turns, row.errors, row.latency_count) == (2, 4, 1, 2)
    mark = RollupWatermark.objects.for_org(world.acme).get()
    assert mark.last_turn_id > 0


def test_batches_and_settling(world, settings):
    agent = live_agent(world.acme)
    t = minute(-5)
    for _ in range(3):
        converse(agent, at=t, replies=[(100, None)])  # 3 turns each
    read, more = metrics_rollup(org_id=world.acme.pk, now=timezone.now() + timedelta(minutes=1), batch=4)
    assert (read, more) == (4, True)
    read, more = metrics_rollup(org_id=world.acme.pk, now=timezone.now() + timedelta(minutes=1), batch=4)
    assert read == 4
    read, more = metrics_rollup(org_id=world.acme.pk, now=timezone.now() + timedelta(minutes=1), batch=4)
    assert (read, more) == (1, False)
    assert MetricRollup.objects.for_org(world.acme).get().turns == 6
    # A turn younger than the settle time waits for the next run.
    settings.MONITORING_ROLLUP_SETTLE_SECONDS = 60
    converse(agent, at=timezone.now(), replies=[(100, None)])
    assert metrics_rollup(org_id=world.acme.pk) == (0, False)


def test_orgs_roll_up_apart(world):
    mine, theirs = live_agent(world.acme), live_agent(world.globex)
    t = minute(-3)
    converse(mine, at=t)
    converse(theirs, at=t)
    rollup(world.acme)
    assert MetricRollup.objects.for_org(world.acme).count() == 1
    assert MetricRollup.objects.for_org(world.globex).count() == 0


@pytest.mark.parametrize(
    "params, field",
    [
        ({"window": "abc"}, "window"),
        ({"window": "0h"}, "window"),
        ({"window": "91d"}, "window"),
        ({"window": "90s"}, "window"),
        ({"bucket": "30s"}, "bucket"),
        ({"bucket": "2d"}, "bucket"),
        ({"window": "1h", "bucket": "2h"}, "bucket"),
        ({"window": "90d", "bucket": "1m"}, "bucket"),
        ({"by": "agent"}, "by"),
        ({"source": "live,bogus"}, "source"),
        ({"window": "1h\x00"}, "window"),
    ],
)
def test_bad_parameters_are_400_with_the_field(world, params, field):
    agent = live_agent(world.acme)
    body = assert_envelope(world.client("viewer").get(url(agent, **params)), 400, "invalid")
    assert field in body["error"]["fields"], body


def test_a_member_without_the_stage_gets_404(world):
    agent = live_agent(world.acme)
    assert_envelope(world.client("member").get(url(agent)), 404, "not_found")


def test_query_count_does_not_grow_with_history_or_versions(world):
    agent = live_agent(world.acme, versions=3)

    def queries():
        client = world.client("viewer")
        client.get(url(agent, window="1h", bucket="5m"))  # authentication warm-up
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url(agent, window="1h", bucket="5m")).status_code == 200
        return len(captured)

    converse(agent, at=minute(-2), replies=[(100, None)], rating=5)
    rollup(world.acme)
    few = queries()
    for i in range(30):
        converse(agent, at=minute(-i), version=1 + i % 3, replies=[(100 + i, None)], rating=3)
    rollup(world.acme)
    assert queries() == few
