"""A red-team run on a real worker: attacks play through the runtime as stored test_run
conversations, the table is filled, and no secret reaches the findings."""

import pytest

from agents.models import Conversation
from agents.services.versions import version_save
from lifecycle.operations import Operation
from rollouts.models import RedTeamRun
from rollouts.services.redteam import redteam_start
from tests.factories import add_component, make_agent, make_world, owner_access, skill
from tests.processes import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_red_team_run_on_a_real_worker_fills_the_table(worker_factory):
    world = make_world()
    agent = make_agent(world.acme, settings={"instructions": "Be kind.", "denied_topics": ["politics"]})
    add_component(agent, "skill", "greeting", skill(["hello"], ["Hi there!"]))
    add_component(agent, "variable", "CRM_TOKEN", {"value": "crm-token-0123456789", "secret": True})
    version_save(access=owner_access(world.acme), agent=agent, changelog="greeting")
    worker_factory()
    operation = redteam_start(
        access=owner_access(world.acme),
        agent=agent,
        categories=["prompt_injection", "secret_leak", "off_policy", "violence"],
        strategies=["basic", "base64", "multi_turn"],
    )
    done = wait_for(
        lambda: (op := Operation.objects.for_org(world.acme).get(pk=operation.pk)).is_finished and op,
        90,
        0.2,
        "the red-team run to finish",
    )
    assert done.status == "succeeded", done.error
    run = RedTeamRun.objects.for_org(world.acme).get(pk=done.result["run"])
    assert run.status == "succeeded" and run.version == 2 and run.finished_at is not None
    # 4 categories x 2 prompts (one denied topic) x 3 strategies
    assert run.attacks == 24 and len(run.table) == 12
    stored = Conversation.objects.for_org(world.acme).filter(agent=agent, source="test_run")
    assert stored.count() == 24
    assert "crm-token-0123456789" not in str(run.findings)
