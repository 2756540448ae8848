"""Export → import → export, across orgs, all or nothing."""

from agents.models import Agent, AgentVersion, Component
from tests.api_mixin import assert_envelope
from tests.factories import add_component, knowledge, make_agent, skill

TOOL = {"description": "Order status", "parameters": {"type": "object"}, "response": {"status": "shipped"}}


def build(world):
    agent = make_agent(world.acme, "Support", access=world.access("developer"))
    add_component(agent, "tool", "lookup", TOOL)
    add_component(agent, "skill", "status", skill(["where is my order"], tool="lookup"))
    add_component(agent, "knowledge", "returns", knowledge())
    add_component(agent, "variable", "CRM_URL", {"value": "https://crm.test", "secret": False})
    add_component(agent, "variable", "CRM_KEY", {"value": "canary-export-secret", "secret": True})
    add_component(agent, "persona", "tone", {"description": "Warm"})
    return agent


def test_round_trip_into_another_org_keeps_components(world):
    agent = build(world)
    exported = world.client("developer").get(f"/api/v1/orgs/acme/agents/{agent.pk}/export/")
    assert exported.status_code == 200 and exported["Content-Disposition"].endswith('.agent.json"')
    document = exported.json()
    assert document["format_version"] == 1 and "canary-export-secret" not in exported.content.decode()
    secret = next(c for c in document["components"] if c["name"] == "CRM_KEY")
    assert secret["spec"] == {"secret": True, "value": None, "is_set": False}
    assert not any(key in str(document) for key in ("created_at", '"id"', str(agent.pk)))

    imported = world.client("outsider").post("/api/v1/orgs/globex/agents/import/", document, format="json")
    assert imported.status_code == 201, imported.content
    body = imported.json()
    assert body["stage"] == "development" and body["version"] == 1 and body["name"] == "Support"
    again = world.client("outsider").get(f"/api/v1/orgs/globex/agents/{body['id']}/export/").json()
    assert again["components"] == document["components"]
    new_agent = Agent.objects.for_org(world.globex).get(pk=body["id"])
    assert AgentVersion.objects.for_org(world.globex).get(agent=new_agent).reason == "import"
    uids = set(Component.objects.for_org(world.globex).filter(agent=new_agent).values_list("uid", flat=True))
    assert uids == set(
        Component.objects.for_org(world.acme).filter(agent=agent).values_list("uid", flat=True)
    )


def test_a_bad_document_is_refused_with_paths_and_leaves_nothing(world):
    agent = build(world)
    document = world.client("developer").get(f"/api/v1/orgs/acme/agents/{agent.pk}/export/").json()
    document["components"][2]["spec"] = {"utterances": [], "responses": []}
    document["components"].append(
        {"uid": document["components"][0]["uid"], "kind": "knowledge", "name": "x", "spec": knowledge()}
    )
    document["components"].append({"kind": "wizard", "name": "x", "spec": {}})
    before = (Agent.objects.for_org(world.acme).count(), Component.objects.for_org(world.acme).count())
    response = world.client("developer").post("/api/v1/orgs/acme/agents/import/", document, format="json")
    fields = assert_envelope(response, 400, "invalid")["error"]["fields"]
    n = len(document["components"])
    assert f"components.{n - 2}.uid" in fields and f"components.{n - 1}.kind" in fields
    assert any(path.startswith("components.") and ".spec." in path for path in fields)
    assert (
        Agent.objects.for_org(world.acme).count(),
        Component.objects.for_org(world.acme).count(),
    ) == before


def test_import_refuses_other_formats_and_missing_names(world):
    client = world.client("developer")
    url = "/api/v1/orgs/acme/agents/import/"
    assert (
        "format_version"
        in assert_envelope(client.post(url, {"format_version": 2, "name": "x"}, format="json"), 400)["error"][
            "fields"
        ]
    )
    assert (
        "name"
        in assert_envelope(client.post(url, {"format_version": 1, "components": []}, format="json"), 400)[
            "error"
        ]["fields"]
    )
    assert_envelope(client.post(url, ["not", "a", "document"], format="json"), 400)
    minimal = client.post(url, {"format_version": 1, "name": "Bare", "components": []}, format="json")
    assert minimal.status_code == 201 and minimal.json()["settings"]["engine"] == "builtin"
