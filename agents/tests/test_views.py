"""The agent UI: stage tabs, the editor, versions, sharing, presence."""

from agents.models import Agent, AgentUserObjectPermission, Component
from agents.services.presence import presence_heartbeat
from tests.factories import add_component, knowledge, make_agent, signed_in, skill


def test_agents_page_has_stage_tabs_owner_version_status_and_editors(world):
    agent = make_agent(world.acme, "Concierge", access=world.access("developer"))
    add_component(agent, "skill", "greet", skill())
    presence_heartbeat(access=world.access("admin"), agent=agent, module="skills")
    page = signed_in(world.users["tester"]).get("/orgs/acme/agents/").content.decode()
    assert "Concierge" in page and "developer@acme.test" in page and "v1" in page
    assert "unsaved changes" in page and "admin@acme.test · skills" in page
    for stage in ("Development", "Testing", "Staging", "Production"):
        assert stage in page
    assert 'title="You have no role in Production"' in page  # tester has no role there
    assert "New agent" not in page  # testers do not create agents


def test_create_an_agent_in_the_ui(world):
    client = signed_in(world.users["developer"])
    response = client.post(
        "/orgs/acme/agents/new/",
        {
            "name": "Returns bot",
            "description": "",
            "instructions": "Help",
            "first_message": "Hi",
            "engine": "builtin",
        },
    )
    agent = Agent.objects.for_org(world.acme).get(name="Returns bot")
    assert response["Location"] == f"/orgs/acme/agents/{agent.pk}/"
    page = client.get(response["Location"]).content.decode()
    assert "Save settings" in page and "Returns bot" in page


def test_add_edit_and_delete_components_with_errors_next_to_fields(world):
    agent = make_agent(world.acme, access=world.access("developer"))
    client = signed_in(world.users["developer"])
    base = f"/orgs/acme/agents/{agent.pk}/m/"
    response = client.post(
        base + "skills/",
        {
            "new-name": "refund",
            "new-utterances": "I want a refund\nmoney back",
            "new-responses": "Sure, {{name}}.",
            "new-slots": "",
        },
    )
    assert response.status_code == 302
    refund = Component.objects.for_org(world.acme).get(agent=agent, name="refund")
    assert refund.spec["utterances"] == ["I want a refund", "money back"]
    bad = client.post(
        base + "skills/",
        {"new-name": "broken", "new-utterances": "", "new-responses": "x", "new-slots": "{not json"},
    )
    assert bad.status_code == 200 and b"Not valid JSON" in bad.content
    bad = client.post(base + "skills/", {"new-name": "broken", "new-utterances": "", "new-responses": "x"})
    assert b"Give example utterances, patterns or both." in bad.content
    edited = client.post(
        base + "skills/",
        {
            "uid": str(refund.uid),
            f"{refund.uid}-name": "refund",
            f"{refund.uid}-utterances": "refund",
            f"{refund.uid}-responses": "Done.",
        },
    )
    assert edited.status_code == 302
    refund.refresh_from_db()
    assert refund.spec["responses"] == ["Done."]
    client.post(
        base + "knowledge/", {"new-name": "returns", "new-title": "Returns", "new-body": "Within 30 days."}
    )
    assert Component.objects.for_org(world.acme).filter(agent=agent, kind="knowledge").count() == 1
    client.post(base + "skills/", {"delete": str(refund.uid)})
    assert not Component.objects.for_org(world.acme).filter(pk=refund.pk).exists()
    assert client.post(base + "skills/", {"delete": "not-a-uid"}).status_code == 404


def test_secret_variables_are_write_only_in_the_ui(world):
    agent = make_agent(world.acme, access=world.access("developer"))
    client = signed_in(world.users["developer"])
    client.post(
        f"/orgs/acme/agents/{agent.pk}/m/variables/",
        {"new-name": "API_KEY", "new-value": "ui-canary-secret", "new-secret": "on"},
    )
    page = client.get(f"/orgs/acme/agents/{agent.pk}/m/variables/").content.decode()
    assert "API_KEY" in page and "ui-canary-secret" not in page and "(set; type to replace)" in page


def test_versions_page_saves_compares_and_restores(world):
    agent = make_agent(world.acme, access=world.access("developer"))
    client = signed_in(world.users["developer"])
    add_component(agent, "knowledge", "faq", knowledge())
    client.post(f"/orgs/acme/agents/{agent.pk}/versions/", {"changelog": "FAQ added"})
    page = client.get(f"/orgs/acme/agents/{agent.pk}/versions/", {"a": 1, "b": 2}).content.decode()
    assert "FAQ added" in page and "<strong>1</strong> created" in page
    client.post(f"/orgs/acme/agents/{agent.pk}/versions/", {"restore": "1", "changelog": "Back to v1"})
    assert not Component.objects.for_org(world.acme).filter(agent=agent, kind="knowledge").exists()
    assert Agent.objects.for_org(world.acme).get(pk=agent.pk).version == 3


def test_sharing_page(world):
    agent = make_agent(world.acme, access=world.access("developer"))
    client = signed_in(world.users["developer"])
    client.post(
        f"/orgs/acme/agents/{agent.pk}/sharing/",
        {"user": "member@acme.test", "permissions": ["view", "change"]},
    )
    assert (
        AgentUserObjectPermission.objects.for_org(world.acme).filter(user=world.users["member"]).count() == 2
    )
    assert signed_in(world.users["member"]).get(f"/orgs/acme/agents/{agent.pk}/").status_code == 200
    assert (
        signed_in(world.users["viewer"])
        .post(f"/orgs/acme/agents/{agent.pk}/sharing/", {"user": "member@acme.test", "permissions": ["view"]})
        .status_code
        == 302
    )


def test_presence_heartbeat_from_an_open_module(world):
    agent = make_agent(world.acme, access=world.access("developer"))
    admin = signed_in(world.users["admin"])
    url = f"/orgs/acme/agents/{agent.pk}/presence/"
    admin.post(url, {"module": "knowledge", "editing": "1"}, HTTP_HX_REQUEST="true")
    banner = (
        signed_in(world.users["developer"]).post(url, {"module": "skills", "editing": ""}).content.decode()
    )
    assert "admin@acme.test" in banner and "knowledge" in banner
    assert signed_in(world.users["tester"]).post(url, {"module": "skills", "editing": "1"}).status_code == 403


def test_agent_pages_are_404_for_those_who_cannot_see(world):
    agent = make_agent(world.acme)
    for path in ("", "m/skills/", "versions/", "sharing/", "results/", "conversations/"):
        assert signed_in(world.users["member"]).get(f"/orgs/acme/agents/{agent.pk}/{path}").status_code == 404
        assert (
            signed_in(world.users["outsider"]).get(f"/orgs/acme/agents/{agent.pk}/{path}").status_code == 404
        )


def test_import_from_the_ui(world):
    agent = make_agent(world.acme, "Exported")
    document = (
        signed_in(world.users["admin"]).get(f"/api/v1/orgs/acme/agents/{agent.pk}/export/").content.decode()
    )
    response = signed_in(world.users["outsider"]).post(
        "/orgs/globex/agents/new/", {"import": "1", "document": document}
    )
    assert response.status_code == 302
    broken = signed_in(world.users["outsider"]).post(
        "/orgs/globex/agents/new/", {"import": "1", "document": '{"format_version": 1}'}
    )
    assert b"name: A name of 1 to 120 characters is required." in broken.content


def test_the_conversations_page_lists_by_source_and_opens_one_with_its_turns(world):
    from agents.tests.test_api_conversations import talk

    agent = make_agent(world.acme)
    live = talk(agent, source="live", rating=5)
    talk(agent, source="console")
    client = signed_in(world.users["developer"])
    page = client.get(f"/orgs/acme/agents/{agent.pk}/conversations/").content.decode()
    assert (
        page.count('<span class="badge">live</span>') == 1
        and page.count('<span class="badge">console</span>') == 1
    )
    assert "Order 4242 has shipped." not in page, "turns show only for the opened conversation"
    opened = client.get(
        f"/orgs/acme/agents/{agent.pk}/conversations/?source=live&open={live.pk}"
    ).content.decode()
    assert '<span class="badge">console</span>' not in opened
    assert "Order 4242 has shipped." in opened and "total 9 ms" in opened and "tool lookup_order" in opened
    assert "5/5" in opened
    assert client.get(f"/orgs/acme/agents/{agent.pk}/conversations/?source=<script>").status_code == 200
