from agents.api.views import ComponentViewSet
from agents.models import Component, Tombstone
from agents.tests.helpers import AgentChildTests
from lifecycle.audit import AuditEvent
from tests.api_mixin import assert_envelope
from tests.factories import add_component, knowledge, make_agent, skill

PATH = "/api/v1/orgs/{org}/agents/{agent}/components/"


def url(agent, uid=None):
    base = PATH.format(org=agent.org.slug, agent=agent.pk, id="")
    return base + (f"{uid}/" if uid else "")


class TestComponentsTenancy(AgentChildTests):
    views = (ComponentViewSet,)
    list_url = PATH
    detail_url = PATH + "{id}/"
    lookup_key = "uid"
    reader = "developer"
    forbidden = ("tester", "PATCH", "detail", {"name": "renamed"})
    etag_write = ("developer", "PATCH", {"name": "renamed", "spec": skill(["hey"])})
    create_payload = {"kind": "skill", "name": "greet", "spec": skill()}
    creator = "developer"

    def make_object(self, world, org):
        agent = self.agent_in(world, org)
        return str(add_component(agent, "skill", f"s{Component.objects.for_org(org).count()}", skill()).uid)

    def count(self, world):
        return Component.objects.for_org(world.acme).count()


def test_create_read_update_delete_a_skill(world):
    agent = make_agent(world.acme)
    client = world.client("developer")
    created = client.post(
        url(agent), {"kind": "skill", "name": "refund", "spec": skill(["I want a refund"])}, format="json"
    )
    assert created.status_code == 201, created.content
    uid = created.json()["uid"]
    got = client.get(url(agent, uid))
    assert got.json()["spec"]["utterances"] == ["I want a refund"] and got["ETag"]
    changed = client.patch(url(agent, uid), {"spec": skill(["refund please"], ["On it."])}, format="json")
    assert changed.json()["spec"]["responses"] == ["On it."]
    assert changed.json()["content_hash"] != created.json()["content_hash"]
    assert client.delete(url(agent, uid)).status_code == 204
    assert_envelope(client.get(url(agent, uid)), 404)
    actions = list(
        AuditEvent.objects.for_org(world.acme)
        .filter(action__startswith="component.")
        .values_list("action", flat=True)
    )
    assert sorted(actions) == ["component.create", "component.delete", "component.update"]


def test_kind_filter_and_field_errors(world):
    agent = make_agent(world.acme)
    add_component(agent, "knowledge", "returns", knowledge())
    client = world.client("developer")
    kinds = {c["kind"] for c in client.get(url(agent), {"kind": "knowledge"}).json()["results"]}
    assert kinds == {"knowledge"}
    bad = client.post(
        url(agent),
        {"kind": "skill", "name": "x", "spec": {"utterances": [""], "responses": []}},
        format="json",
    )
    fields = assert_envelope(bad, 400)["error"]["fields"]
    assert fields == {
        "spec.utterances.0": ["This field may not be blank."],
        "spec.responses": ["Ensure this field has at least 1 elements."],
    }


def test_settings_is_a_singleton_that_cannot_be_deleted(world):
    agent = make_agent(world.acme)
    client = world.client("developer")
    settings_uid = client.get(url(agent), {"kind": "settings"}).json()["results"][0]["uid"]
    assert_envelope(client.delete(url(agent, settings_uid)), 409, "conflict")
    assert_envelope(client.post(url(agent), {"kind": "settings", "spec": {}}, format="json"), 409, "conflict")


def test_tool_names_are_unique_and_skills_reference_existing_tools(world):
    agent = make_agent(world.acme)
    client = world.client("developer")
    tool = {
        "description": "Look up an order",
        "parameters": {"type": "object"},
        "response": {"status": "shipped"},
    }
    assert (
        client.post(url(agent), {"kind": "tool", "name": "lookup", "spec": tool}, format="json").status_code
        == 201
    )
    duplicate = client.post(url(agent), {"kind": "tool", "name": "lookup", "spec": tool}, format="json")
    assert "name" in assert_envelope(duplicate, 400)["error"]["fields"]
    missing = client.post(
        url(agent), {"kind": "skill", "name": "s", "spec": skill(tool="nope")}, format="json"
    )
    assert assert_envelope(missing, 400)["error"]["fields"] == {
        "spec.tool": ["No tool named 'nope' in this agent."]
    }
    ok = client.post(url(agent), {"kind": "skill", "name": "s", "spec": skill(tool="lookup")}, format="json")
    assert ok.status_code == 201


def test_deleting_a_synced_component_leaves_a_tombstone(world):
    agent = make_agent(world.acme)
    component = add_component(agent, "skill", "greet", skill())
    Component.objects.for_org(world.acme).filter(pk=component.pk).update(synced_hash=component.content_hash)
    world.client("developer").delete(url(agent, component.uid))
    stone = Tombstone.objects.for_org(world.acme).get(agent=agent)
    assert str(stone.uid) == str(component.uid) and stone.synced_hash == component.content_hash


def test_components_list_query_count_does_not_grow(world, django_assert_max_num_queries):
    agent = make_agent(world.acme)
    client = world.client("developer")
    client.get(url(agent))
    with django_assert_max_num_queries(20) as small:
        client.get(url(agent))
    for n in range(25):
        add_component(agent, "knowledge", f"k{n}", knowledge(title=f"T{n}"))
    with django_assert_max_num_queries(len(small.captured_queries)):
        response = client.get(url(agent), {"page_size": 100})
    assert len(response.json()["results"]) == 26
