"""Agent pages for those who may not edit, and presence that starts with a change."""

from agents.models import Presence
from tests.factories import add_component, make_agent, signed_in, skill


def test_a_viewer_sees_a_read_only_page_with_a_notice(world):
    agent = make_agent(world.acme, "Concierge", access=world.access("developer"))
    add_component(agent, "skill", "greet", skill())
    notice = "You can view this agent; editing needs the editor role in Development."
    for module in ("", "m/skills/"):
        page = signed_in(world.users["viewer"]).get(f"/orgs/acme/agents/{agent.pk}/{module}").content.decode()
        assert notice in page
        assert '<fieldset class="plain" disabled>' in page
        assert "Save" not in page and "Delete" not in page and 'id="add-form"' not in page
        mine = (
            signed_in(world.users["developer"]).get(f"/orgs/acme/agents/{agent.pk}/{module}").content.decode()
        )
        assert notice not in mine and '<fieldset class="plain">' in mine and "Save" in mine
    versions = (
        signed_in(world.users["viewer"]).get(f"/orgs/acme/agents/{agent.pk}/versions/").content.decode()
    )
    assert notice in versions


def test_an_archived_agent_says_it_is_read_only(world):
    agent = make_agent(world.acme, "Concierge", access=world.access("developer"))
    developer = signed_in(world.users["developer"])
    developer.post(f"/orgs/acme/agents/{agent.pk}/archive/")
    page = developer.get(f"/orgs/acme/agents/{agent.pk}/").content.decode()
    assert "Concierge is archived and read-only. Unarchive it to edit it again." in page
    assert '<fieldset class="plain" disabled>' in page


def test_opening_a_module_is_not_editing_it(world):
    """The poll of an open module records no presence until something changed in it."""
    agent = make_agent(world.acme, access=world.access("developer"))
    developer = signed_in(world.users["developer"])
    page = developer.get(f"/orgs/acme/agents/{agent.pk}/m/skills/").content.decode()
    assert 'hx-trigger="lifecycle:editing, every 30s"' in page
    url = f"/orgs/acme/agents/{agent.pk}/presence/"
    assert developer.post(url, {"module": "skills", "editing": ""}, HTTP_HX_REQUEST="true").status_code == 200
    assert not Presence.objects.for_org(world.acme).filter(agent=agent).exists()
    developer.post(url, {"module": "skills", "editing": "1"}, HTTP_HX_REQUEST="true")
    assert Presence.objects.for_org(world.acme).filter(agent=agent, module="skills").count() == 1
