"""Unarchive: an archived agent comes back, unless its lineage is active again in that stage."""

from agents.models import Agent
from agents.tests.helpers import AgentChildTests
from lifecycle.audit import AuditEvent
from tests.api_mixin import assert_envelope
from tests.factories import make_agent, owner_access, promote, signed_in

AGENTS = "/api/v1/orgs/{org}/agents/"
UNARCHIVE = AGENTS + "{agent}/unarchive/"


class TestUnarchiveTenancy(AgentChildTests):
    # AgentViewSet is covered by TestAgentsTenancy; this probes the extra action's id.
    views = ()
    list_url = UNARCHIVE
    reader = "developer"
    probe = ("POST", {})
    listable = False
    # A development viewer may see the agent but not bring it back.
    forbidden = ("tester", "POST", "list", {})


def test_unarchive_brings_the_agent_back_and_is_audited(world):
    agent = make_agent(world.acme)
    client = world.client("developer")
    assert client.delete(AGENTS.format(org="acme") + f"{agent.pk}/").status_code == 204
    response = client.post(UNARCHIVE.format(org="acme", agent=agent.pk))
    assert response.status_code == 200, response.content
    assert response.json()["archived"] is False and response.json()["id"] == str(agent.pk)
    assert Agent.objects.for_org(world.acme).get(pk=agent.pk).archived_at is None
    event = AuditEvent.objects.for_org(world.acme).get(action="agent.unarchive")
    assert event.target_id == str(agent.pk) and event.actor_id == world.users["developer"].pk
    # Editable again.
    renamed = client.patch(AGENTS.format(org="acme") + f"{agent.pk}/", {"name": "Back"}, format="json")
    assert renamed.status_code == 200, renamed.content


def test_unarchive_is_409_while_the_lineage_has_another_active_agent_in_the_stage(world):
    source = make_agent(world.acme)
    first = promote(source)
    access = owner_access(world.acme)
    client = world.client("admin")
    assert client.delete(AGENTS.format(org="acme") + f"{first.pk}/").status_code == 204
    second = promote(source, access=access)
    assert second.pk != first.pk and second.stage_id == first.stage_id
    response = client.post(UNARCHIVE.format(org="acme", agent=first.pk))
    body = assert_envelope(response, 409, "conflict")
    assert second.name in body["error"]["message"]
    assert Agent.objects.for_org(world.acme).get(pk=first.pk).archived_at is not None
    assert not AuditEvent.objects.for_org(world.acme).filter(action="agent.unarchive").exists()


def test_unarchive_needs_the_archive_permission(world):
    agent = make_agent(world.acme)
    world.client("developer").delete(AGENTS.format(org="acme") + f"{agent.pk}/")
    # The tester only views development: 403, and the agent stays archived.
    assert_envelope(world.client("tester").post(UNARCHIVE.format(org="acme", agent=agent.pk)), 403)
    assert Agent.objects.for_org(world.acme).get(pk=agent.pk).archived_at is not None


def test_unarchive_of_an_active_agent_changes_nothing(world):
    agent = make_agent(world.acme)
    response = world.client("developer").post(UNARCHIVE.format(org="acme", agent=agent.pk))
    assert response.status_code == 200 and response.json()["archived"] is False
    assert not AuditEvent.objects.for_org(world.acme).filter(action="agent.unarchive").exists()


def test_ui_archived_agents_are_listed_and_can_be_unarchived(world):
    agent = make_agent(world.acme, "Sales bot")
    client = signed_in(world.users["developer"])
    client.post(f"/orgs/acme/agents/{agent.pk}/archive/")
    link = f'href="/orgs/acme/agents/{agent.pk}/"'
    listed = client.get("/orgs/acme/agents/?stage=development").content.decode()
    assert link not in listed and "Show archived agents" in listed
    archived = client.get("/orgs/acme/agents/?stage=development&archived=true").content.decode()
    assert link in archived
    page = client.get(f"/orgs/acme/agents/{agent.pk}/").content.decode()
    assert f"/orgs/acme/agents/{agent.pk}/unarchive/" in page
    response = client.post(f"/orgs/acme/agents/{agent.pk}/unarchive/")
    assert response.status_code == 302
    assert Agent.objects.for_org(world.acme).get(pk=agent.pk).archived_at is None
    # The viewer sees no Unarchive button on an archived agent.
    client.post(f"/orgs/acme/agents/{agent.pk}/archive/")
    viewer_page = signed_in(world.users["viewer"]).get(f"/orgs/acme/agents/{agent.pk}/").content.decode()
    assert "/unarchive/" not in viewer_page
