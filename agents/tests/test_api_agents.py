from accounts.models import Stage
from agents.api.views import AgentViewSet
from agents.models import Agent, AgentVersion, Component
from lifecycle.audit import AuditEvent
from tests.api_mixin import OrgScopedEndpointTests, assert_envelope
from tests.factories import SETTINGS, add_component, add_member, api_client, make_agent, skill

AGENTS = "/api/v1/orgs/{org}/agents/"


class TestAgentsTenancy(OrgScopedEndpointTests):
    views = (AgentViewSet,)
    list_url = AGENTS
    detail_url = AGENTS + "{id}/"
    reader = "developer"
    forbidden = ("viewer", "PATCH", "detail", {"name": "Renamed"})
    etag_write = ("developer", "PATCH", {"name": "Renamed", "description": "New words"})
    create_payload = {
        "name": "Support bot",
        "description": "Helps",
        "settings": SETTINGS,
        "changelog": "First",
    }
    creator = "developer"

    def make_object(self, world, org):
        return str(make_agent(org).pk)


def test_create_writes_version_1_in_the_first_stage(world):
    response = world.client("developer").post(
        AGENTS.format(org="acme"), {"name": "Sales Assistant", "settings": SETTINGS}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["stage"] == "development" and body["lineage"] == "sales-assistant"
    assert body["version"] == 1 and body["owner"]["email"] == "developer@acme.test"
    assert body["settings"] == {**SETTINGS}
    assert body["updates_available"] is False and body["archived"] is False
    agent = Agent.objects.for_org(world.acme).get(pk=body["id"])
    assert AgentVersion.objects.for_org(world.acme).get(agent=agent).reason == "create"
    assert AuditEvent.objects.for_org(world.acme).filter(action="agent.create", target_id=body["id"]).exists()


def test_creating_needs_editor_in_the_first_stage(world):
    assert_envelope(world.client("tester").post(AGENTS.format(org="acme"), {"name": "X"}, format="json"), 403)
    assert_envelope(world.client("viewer").post(AGENTS.format(org="acme"), {"name": "X"}, format="json"), 403)


def test_settings_are_validated_with_field_paths(world):
    response = world.client("developer").post(
        AGENTS.format(org="acme"),
        {"name": "X", "settings": {"engine": "gpt9", "temperature": 7, "instrutions": "typo"}},
        format="json",
    )
    fields = assert_envelope(response, 400, "invalid")["error"]["fields"]
    assert set(fields) == {"settings.engine", "settings.temperature", "settings.instrutions"}
    assert not Agent.objects.for_org(world.acme).exists()


def test_lineage_slugs_are_unique_and_stable(world):
    client = world.client("developer")
    first = client.post(AGENTS.format(org="acme"), {"name": "Helper"}, format="json").json()
    second = client.post(AGENTS.format(org="acme"), {"name": "Helper"}, format="json").json()
    assert (first["lineage"], second["lineage"]) == ("helper", "helper-2")
    renamed = client.patch(
        AGENTS.format(org="acme") + f"{first['id']}/", {"name": "Renamed"}, format="json"
    ).json()
    assert renamed["lineage"] == "helper" and renamed["name"] == "Renamed"


def test_filters_by_stage_lineage_search_and_archived(world):
    a = make_agent(world.acme, "Billing helper")
    make_agent(world.acme, "Shipping helper")
    client = world.client("admin")

    def names(**params):
        return {x["name"] for x in client.get(AGENTS.format(org="acme"), params).json()["results"]}

    assert names(search="billing") == {"Billing helper"}
    assert names(lineage="shipping-helper") == {"Shipping helper"}
    assert names(stage="testing") == set()
    client.delete(AGENTS.format(org="acme") + f"{a.pk}/")
    assert names() == {"Shipping helper"}
    assert names(archived="true") == {"Billing helper"}
    assert names(archived="all") == {"Billing helper", "Shipping helper"}


def test_archive_keeps_history_readable(world):
    agent = make_agent(world.acme)
    client = world.client("developer")
    assert client.delete(AGENTS.format(org="acme") + f"{agent.pk}/").status_code == 204
    body = client.get(AGENTS.format(org="acme") + f"{agent.pk}/").json()
    assert body["archived"] is True
    assert client.get(AGENTS.format(org="acme") + f"{agent.pk}/versions/").json()["results"]
    # An archived agent is read-only.
    assert_envelope(
        client.patch(AGENTS.format(org="acme") + f"{agent.pk}/", {"name": "x"}, format="json"), 409
    )


def test_stage_visibility_and_settings_patch(world):
    agent = make_agent(world.acme)
    url = AGENTS.format(org="acme") + f"{agent.pk}/"
    assert world.client("tester").get(url).status_code == 200  # development viewer
    assert_envelope(world.client("member").get(url), 404, "not_found")  # no role in development
    assert_envelope(world.client("tester").patch(url, {"name": "x"}, format="json"), 403, "forbidden")
    patched = world.client("developer").patch(
        url, {"settings": {**SETTINGS, "temperature": 0.2}}, format="json"
    )
    assert patched.json()["settings"]["temperature"] == 0.2
    assert patched.json()["has_unsaved_changes"] is True


def test_agents_list_query_count_does_not_grow(world, django_assert_max_num_queries):
    client = world.client("admin")
    make_agent(world.acme)
    client.get(AGENTS.format(org="acme"))
    with django_assert_max_num_queries(30) as small:
        client.get(AGENTS.format(org="acme"))
    for _ in range(12):
        add_component(make_agent(world.acme), "skill", "greet", skill())
    with django_assert_max_num_queries(len(small.captured_queries)):
        response = client.get(AGENTS.format(org="acme"), {"page_size": 100})
    assert len(response.json()["results"]) == 13


def test_a_stage_holding_agents_cannot_be_deleted(world):
    make_agent(world.acme)
    response = world.client("admin").delete("/api/v1/orgs/acme/stages/development/")
    assert_envelope(response, 409, "conflict")
    assert Stage.objects.for_org(world.acme).filter(slug="development").exists()


def test_import_is_a_member_action_but_needs_editor(world):
    member = add_member(world.acme, "plain@acme.test")
    response = api_client(member).post(
        AGENTS.format(org="acme") + "import/",
        {"format_version": 1, "name": "X", "components": []},
        format="json",
    )
    assert_envelope(response, 403, "forbidden")
    assert not Component.objects.for_org(world.acme).exists()
