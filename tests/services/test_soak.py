"""Soak tests on a real worker: percentiles from a webhook with set delays, and cancel."""

import time

import pytest

from agents.models import Conversation
from lifecycle.operations import Operation, operation_cancel
from rollouts.models import SoakTest
from rollouts.services.soak import soak_start
from tests.factories import add_component, make_agent, make_world, owner_access, skill
from tests.http_servers import Recorder
from tests.processes import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def webhook_agent(org, url):
    agent = make_agent(org, "Soaked on a worker")
    add_component(
        agent,
        "tool",
        "lookup",
        {"description": "d", "parameters": {"type": "object", "properties": {}}, "webhook_url": url},
    )
    add_component(agent, "skill", "status", skill(["order status"], ["It is {{tool.state}}."], tool="lookup"))
    return agent


def finished(org, operation):
    return lambda: (op := Operation.objects.for_org(org).get(pk=operation.pk)).is_finished and op


def test_a_soak_on_a_real_worker_measures_the_webhooks_delays(worker_factory):
    world = make_world()

    # Half the calls answer at once, half after 200 ms; every fifth one fails.
    def handler(recorder, request):
        n = len(recorder.requests)
        return (404 if n % 5 == 0 else 200), {"state": "ok"}, (0.2 if n % 2 == 0 else 0.0)

    with Recorder(handler) as server:
        agent = webhook_agent(world.acme, server.url + "/hook")
        worker_factory(LIFECYCLE_OUTBOUND_ALLOWED_HOSTS="127.0.0.1")
        operation = soak_start(
            access=owner_access(world.acme), agent=agent, executions=20, concurrency=4, version="draft"
        )
        done = wait_for(finished(world.acme, operation), 90, 0.2, "the soak to finish")
    assert done.status == "succeeded", done.error
    soak = SoakTest.objects.for_org(world.acme).get(pk=done.result["soak"])
    assert soak.status == "succeeded" and soak.executions == 20
    # A 4xx is not retried: one call per execution, every fifth one an error.
    assert len(server.requests) == 20 and soak.errors == 4 and soak.error_rate == 0.2
    assert soak.latency_ms["p99"] >= 200 and soak.latency_ms["p50"] <= soak.latency_ms["p95"]
    assert Conversation.objects.for_org(world.acme).filter(agent=agent, source="soak").count() == 20


def test_cancelling_a_soak_on_a_real_worker_stops_it_within_seconds(worker_factory):
    world = make_world()
    with Recorder(lambda recorder, request: (200, {"state": "ok"}, 0.1)) as server:
        agent = webhook_agent(world.acme, server.url + "/hook")
        worker_factory(LIFECYCLE_OUTBOUND_ALLOWED_HOSTS="127.0.0.1")
        operation = soak_start(
            access=owner_access(world.acme), agent=agent, executions=10_000, concurrency=2, version="draft"
        )
        wait_for(lambda: len(server.requests) >= 6, 60, 0.1, "the soak to be under way")
        asked = time.monotonic()
        operation_cancel(actor=owner_access(world.acme).user, operation=operation)
        done = wait_for(finished(world.acme, operation), 30, 0.1, "the soak to stop")
        took = time.monotonic() - asked
        calls = len(server.requests)
    assert done.status == "cancelled" and took < 5
    soak = SoakTest.objects.for_org(world.acme).get(pk=operation.result["soak"])
    assert soak.status == "cancelled" and 0 < soak.executions < 100 and calls < 100
