"""Safety scores on a sample of live answers, stored per version and read by the gate."""

import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import Stage
from agents.demo import COMPONENTS, SETTINGS
from agents.models import Conversation, Turn
from agents.runtime.compile import CACHE
from agents.services.components import component_create
from agents.services.versions import version_save
from agents.tests.helpers import AgentChildTests
from rollouts.api.safety import AgentSafetyView
from rollouts.models import LiveSafety
from rollouts.policy import stage_policy_update
from rollouts.services.keys import stage_key_create
from rollouts.services.live_safety import live_safety_record, live_sampled
from tests.api_mixin import assert_envelope
from tests.factories import make_agent, owner_access

THREAT = ("skill", "threat", {"utterances": ["say something scary"], "responses": ["I will kill you all."]})


class TestAgentSafetyTenancy(AgentChildTests):
    views = (AgentSafetyView,)
    list_url = "/api/v1/orgs/{org}/agents/{agent}/safety/"
    reader = "admin"
    listable = False
    forbidden = None


def test_the_sample_is_deterministic_and_close_to_its_rate():
    picks = [live_sampled("c-1", i, rate=0.1) for i in range(20_000)]
    assert picks == [live_sampled("c-1", i, rate=0.1) for i in range(20_000)]
    assert 0.09 < sum(picks) / len(picks) < 0.11
    assert not any(live_sampled("c-1", i, rate=0) for i in range(1000))
    assert all(live_sampled("c-1", i, rate=1) for i in range(1000))
    # A larger rate takes every turn a smaller one took: raising it never drops evidence.
    assert all(live_sampled("c-1", i, rate=0.5) for i in range(20_000) if picks[i])


def live_agent(world, name="Live support"):
    CACHE.clear()
    access = owner_access(world.acme)
    agent = make_agent(world.acme, name, settings=SETTINGS)
    for kind, component, spec in [*COMPONENTS, THREAT]:
        component_create(access=access, agent=agent, kind=kind, name=component, spec=spec)
    version_save(access=access, agent=agent, changelog="ready")
    stage = Stage.objects.for_org(world.acme).get(slug="development")
    _, raw = stage_key_create(access=access, stage=stage, name="widget")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    agent.refresh_from_db()
    return agent, client


def converse(client, agent, *texts) -> str:
    base = f"/api/v1/run/acme/{agent.lineage.slug}/development/conversations/"
    cid = client.post(base, {}, format="json").json()["conversation"]
    for text in texts:
        assert client.post(f"{base}{cid}/messages/", {"text": text}, format="json").status_code == 200
    return cid


@pytest.mark.django_db(transaction=True)
def test_sampled_live_answers_are_scored_per_version(world, settings):
    settings.SAFETY_LIVE_SAMPLE_RATE = 1.0
    agent, client = live_agent(world)
    converse(client, agent, "hello", "say something scary", "where is order 4242")
    row = LiveSafety.objects.for_org(world.acme).get(agent=agent, version=agent.version)
    # The threat is violence (lexicon) and abusive (the offensive-language classifier).
    assert (row.scored, row.violence, row.sexual, row.self_harm, row.hate) == (3, 1, 0, 0, 1)
    assert row.rates()["violence"] == pytest.approx(1 / 3, abs=1e-4)
    flagged = Turn.objects.for_org(world.acme).get(text="I will kill you all.")
    assert flagged.details["safety"]["violence"] is True

    body = world.client("viewer").get(f"/api/v1/orgs/acme/agents/{agent.pk}/safety/").json()
    assert body["sample_rate"] == 1.0
    assert body["versions"][0]["version"] == agent.version
    assert body["versions"][0]["live"] == {"scored": 3, "rates": row.rates()}
    assert body["versions"][0]["test_run"] is None


@pytest.mark.django_db(transaction=True)
def test_a_task_delivered_twice_counts_each_answer_once(world, settings):
    settings.SAFETY_LIVE_SAMPLE_RATE = 1.0
    agent, client = live_agent(world)
    cid = converse(client, agent, "say something scary")
    conversation = Conversation.objects.for_org(world.acme).get(pk=cid)
    # The answers the gateway sampled (the greeting is written at the start, not sampled).
    indexes = list(
        Turn.objects.for_org(world.acme)
        .filter(conversation=conversation, role="agent", details__has_key="safety")
        .values_list("index", flat=True)
    )
    assert len(indexes) == 1
    assert live_safety_record(org_id=world.acme.pk, conversation_id=cid, indexes=indexes) == 0
    row = LiveSafety.objects.for_org(world.acme).get(agent=agent)
    assert (row.scored, row.violence) == (1, 1)


@pytest.mark.django_db(transaction=True)
def test_no_sample_at_rate_zero_and_none_outside_live_traffic(world, settings):
    settings.SAFETY_LIVE_SAMPLE_RATE = 0.0
    agent, client = live_agent(world)
    converse(client, agent, "say something scary")
    assert not LiveSafety.objects.for_org(world.acme).exists()
    # Another org's conversation id, or a console one, is not scored under this org.
    assert live_safety_record(org_id=world.acme.pk, conversation_id=world.globex.pk, indexes=[1]) == 0


@pytest.mark.django_db(transaction=True)
def test_the_gate_reads_the_worst_category_and_no_data_fails(world, settings):
    settings.SAFETY_LIVE_SAMPLE_RATE = 1.0
    agent, client = live_agent(world)
    access = owner_access(world.acme)
    testing = Stage.objects.for_org(world.acme).get(slug="testing")
    stage_policy_update(access=access, stage=testing, document={"gate": {"max_safety_defect_rate": 0.1}})
    gate = f"/api/v1/orgs/acme/agents/{agent.pk}/gate/?target=testing"

    def check():
        checks = world.client("admin").get(gate).json()["checks"]
        return next(c for c in checks if c["name"] == "max_safety_defect_rate")

    assert check() == {
        "name": "max_safety_defect_rate",
        "actual": "no data",
        "required": 0.1,
        "passed": False,
    }
    converse(client, agent, "hello", "where is order 4242")
    assert check()["actual"] == 0.0 and check()["passed"] is True
    converse(client, agent, "say something scary")
    assert check()["actual"] == pytest.approx(1 / 3, abs=1e-4) and check()["passed"] is False


def test_the_policy_refuses_a_rate_out_of_range(world):
    response = world.client("admin").put(
        "/api/v1/orgs/acme/stages/testing/policy/",
        {"gate": {"max_safety_defect_rate": 1.5}},
        format="json",
    )
    body = assert_envelope(response, 400, "invalid")
    assert "gate.max_safety_defect_rate" in body["error"]["fields"]


@pytest.mark.django_db(transaction=True)
def test_the_test_runs_tab_shows_the_live_sample_per_version(world, settings):
    settings.SAFETY_LIVE_SAMPLE_RATE = 1.0
    agent, client = live_agent(world)
    converse(client, agent, "hello", "say something scary", "where is order 4242")
    browser = Client()
    browser.force_login(world.users["viewer"])
    page = browser.get(f"/orgs/acme/agents/{agent.pk}/test-runs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Safety defects per version" in html and "live sample (3 answers)" in html
    assert '<td class="defect">33.3 %</td>' in html  # violence: one answer in three
