"""Cancelling a test run mid-run on a real worker: it stops within seconds, the run reads
`cancelled`, the cases played so far are kept with their conversations, and the worker
goes on to the next run."""

import time

import pytest

from agents.models import Conversation
from agents.services.versions import version_save
from lifecycle.operations import Operation
from rollouts.models import TestCase, TestRun, TestSuite
from rollouts.services.test_runs import test_run_start as start_run
from tests.factories import add_component, make_agent, make_world, owner_access, skill
from tests.http_servers import Recorder
from tests.processes import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

DELAY = 0.5  # seconds each tool call takes: a case is slow, a run of 40 takes 20 s


def finished(org, operation):
    return lambda: (op := Operation.objects.for_org(org).get(pk=operation.pk)).is_finished and op


def test_cancelling_a_test_run_stops_it_within_seconds_and_keeps_the_cases_played(worker_factory):
    world = make_world()
    with Recorder(lambda recorder, request: (200, {"state": "shipped"}, DELAY)) as server:
        agent = make_agent(world.acme, "Slow tools")
        add_component(
            agent,
            "tool",
            "lookup",
            {
                "description": "d",
                "parameters": {"type": "object", "properties": {}},
                "webhook_url": server.url + "/hook",
            },
        )
        add_component(
            agent, "skill", "status", skill(["order status"], ["It is {{tool.state}}."], tool="lookup")
        )
        version_save(access=owner_access(world.acme), agent=agent, changelog="slow lookup")
        suite = TestSuite.objects.create(org=world.acme, lineage_id=agent.lineage_id, name="Slow")
        for n in range(40):
            TestCase.objects.create(
                org=world.acme,
                suite=suite,
                name=f"status {n}",
                position=n,
                turns=[{"user": "order status", "expect": [{"type": "contains", "value": "shipped"}]}],
            )
        worker_factory(LIFECYCLE_OUTBOUND_ALLOWED_HOSTS="127.0.0.1")
        operation = start_run(access=owner_access(world.acme), agent=agent, suite=suite)
        wait_for(lambda: len(server.requests) >= 3, 60, 0.05, "the run to be under way")
        asked = time.monotonic()
        response = world.client("owner").post(f"/api/v1/orgs/acme/operations/{operation.pk}/cancel/")
        assert response.status_code in (200, 202), response.content
        done = wait_for(finished(world.acme, operation), 30, 0.05, "the run to stop")
        took = time.monotonic() - asked
        calls = len(server.requests)
        time.sleep(2 * DELAY)
        assert len(server.requests) == calls, "no tool call after the run stopped"

        assert done.status == "cancelled" and took < 5, (done.status, took)
        run = TestRun.objects.for_org(world.acme).get(pk=operation.result["run"])
        assert run.status == "cancelled" and run.finished_at is not None
        # The cases played before the cancel are kept, each passed, each with its conversation.
        assert 3 <= len(run.cases) < 40 and all(c["passed"] for c in run.cases)
        assert len(run.cases) <= calls <= len(run.cases) + 1  # at most the case cut short
        played = [c["conversation"] for c in run.cases]
        conversations = Conversation.objects.for_org(world.acme).filter(pk__in=played)
        assert conversations.count() == len(run.cases)
        assert all(c.turns.filter(role="agent").exists() for c in conversations)
        # A cancelled run is no evidence: no accuracy.
        assert run.accuracy is None
        # Nothing else is lost: the suite is whole, and the worker runs the next one to its end.
        assert TestCase.objects.for_org(world.acme).filter(suite=suite).count() == 40
        TestCase.objects.for_org(world.acme).filter(suite=suite, position__gte=2).delete()
        again = start_run(access=owner_access(world.acme), agent=agent, suite=suite)
        rerun = wait_for(finished(world.acme, again), 60, 0.1, "the next run to finish")
    assert rerun.status == "succeeded"
    assert TestRun.objects.for_org(world.acme).get(pk=again.result["run"]).accuracy == 1.0
    # The cancelled run never changes again.
    assert TestRun.objects.for_org(world.acme).get(pk=run.pk).cases == run.cases
