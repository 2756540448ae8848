"""A refused promote or pull keeps what was typed: the changelog is not lost."""

from agents.services.presence import presence_heartbeat
from tests.factories import add_component, knowledge, make_agent, promote, signed_in

CHANGELOG = "Ready for QA: new returns policy & greeting"


def test_a_refused_promote_keeps_the_changelog(world):
    agent = make_agent(world.acme, "Support", access=world.access("developer"))
    tester = signed_in(world.users["tester"])
    url = f"/orgs/acme/agents/{agent.pk}/promote/"
    wrong = tester.post(url, {"confirm": "ok", "changelog": CHANGELOG}).content.decode()
    assert "Type &quot;accept&quot; to confirm." in wrong
    assert "Ready for QA: new returns policy &amp; greeting</textarea>" in wrong
    presence_heartbeat(access=world.access("developer"), agent=agent, module="skills")
    busy = tester.post(url, {"confirm": "accept", "changelog": CHANGELOG}).content.decode()
    assert "Go on anyway" in busy
    assert "Ready for QA: new returns policy &amp; greeting</textarea>" in busy


def test_a_refused_pull_keeps_the_changelog(world):
    source = make_agent(world.acme, "Support", access=world.access("developer"))
    clone = promote(source)
    add_component(source, "knowledge", "returns", knowledge())
    tester = signed_in(world.users["tester"])
    page = tester.post(
        f"/orgs/acme/agents/{clone.pk}/pull/", {"confirm": "nope", "changelog": CHANGELOG}
    ).content.decode()
    assert "Ready for QA: new returns policy &amp; greeting</textarea>" in page
