"""A test run on a real worker: the suite plays through the runtime, conversations are stored."""

import pytest

from agents.models import Conversation
from agents.services.versions import version_save
from lifecycle.operations import Operation
from rollouts.models import TestCase, TestRun, TestSuite
from rollouts.services.test_runs import test_run_start as start_run
from tests.factories import add_component, knowledge, make_agent, make_world, owner_access, skill
from tests.processes import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_run_on_a_real_worker_finishes_and_stores_its_conversations(worker_factory):
    world = make_world()
    agent = make_agent(world.acme)
    add_component(agent, "skill", "greeting", skill(["hello"], ["Hi there!"]))
    add_component(agent, "knowledge", "returns", knowledge())
    version_save(access=owner_access(world.acme), agent=agent, changelog="greeting and returns")
    suite = TestSuite.objects.create(org=world.acme, lineage_id=agent.lineage_id, name="Smoke")
    for position, (name, text, expect) in enumerate(
        [
            ("greets", "hello", [{"type": "intent", "value": "greeting"}]),
            ("returns", "how many days to return an item", [{"type": "contains", "value": "30 days"}]),
            ("fails", "hello", [{"type": "equals", "value": "Goodbye."}]),
        ]
    ):
        TestCase.objects.create(
            org=world.acme,
            suite=suite,
            name=name,
            position=position,
            turns=[{"user": text, "expect": expect}],
        )
    worker_factory()
    operation = start_run(access=owner_access(world.acme), agent=agent, suite=suite)
    done = wait_for(
        lambda: (op := Operation.objects.for_org(world.acme).get(pk=operation.pk)).is_finished and op,
        60,
        0.1,
        "the test run to finish",
    )
    assert done.status == "succeeded", done.error
    run = TestRun.objects.for_org(world.acme).get(pk=done.result["run"])
    # agent_create saved v1; the save above is v2, the latest, which the run defaults to.
    assert (run.status, run.version, run.passed, run.failed) == ("succeeded", 2, 2, 1)
    assert run.accuracy == round(2 / 3, 4) and run.finished_at is not None
    stored = Conversation.objects.for_org(world.acme).filter(pk__in=[c["conversation"] for c in run.cases])
    assert stored.count() == 3 and {c.source for c in stored} == {"test_run"}
    assert all(c.turns.filter(role="agent").exists() for c in stored)
