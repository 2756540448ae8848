"""The promote, pull, back-port and drift pages."""

from agents.models import Agent, Component
from agents.services.components import component_update
from agents.services.presence import presence_heartbeat
from lifecycle.operations import Operation
from tests.factories import add_component, knowledge, make_agent, promote, run_operation_now, signed_in, skill


def test_promote_from_the_dialog(world):
    agent = make_agent(world.acme, "Support", access=world.access("developer"))
    add_component(agent, "variable", "CRM_URL", {"value": "x", "secret": False})
    tester = signed_in(world.users["tester"])
    page = tester.get(f"/orgs/acme/agents/{agent.pk}/").content.decode()
    assert "Promote to Testing" in page
    dialog = tester.get(f"/orgs/acme/agents/{agent.pk}/promote/").content.decode()
    assert "Type <strong>accept</strong>" in dialog and "CRM_URL" in dialog
    wrong = tester.post(
        f"/orgs/acme/agents/{agent.pk}/promote/", {"confirm": "ok", "changelog": "A changelog"}
    )
    assert "Type &quot;accept&quot; to confirm." in wrong.content.decode()
    presence_heartbeat(access=world.access("developer"), agent=agent, module="skills")
    busy = tester.post(
        f"/orgs/acme/agents/{agent.pk}/promote/", {"confirm": "accept", "changelog": "A changelog"}
    ).content.decode()
    assert "developer@acme.test" in busy and "Go on anyway" in busy
    started = tester.post(
        f"/orgs/acme/agents/{agent.pk}/promote/",
        {"confirm": "accept", "changelog": "A changelog", "acknowledge_editors": "on"},
    )
    assert started.status_code == 302 and "/operations/" in started["Location"]
    operation = run_operation_now(Operation.objects.for_org(world.acme).get(kind="agent.promote"))
    status = tester.get(started["Location"]).content.decode()
    assert 'data-status="succeeded"' in status and "Open the result" in status and "CRM_URL" in status
    clone = Agent.objects.for_org(world.acme).get(pk=operation.result["agent"]["id"])
    listing = tester.get("/orgs/acme/agents/?stage=testing").content.decode()
    assert "Support" in listing and "review variables (1)" in listing and "tester@acme.test" in listing
    assert "Promote to Testing" not in tester.get(f"/orgs/acme/agents/{agent.pk}/").content.decode()
    assert clone.owner == world.users["tester"]


def test_viewers_see_no_promote_button_and_cannot_post(world):
    agent = make_agent(world.acme)
    viewer = signed_in(world.users["viewer"])
    assert "Promote to" not in viewer.get(f"/orgs/acme/agents/{agent.pk}/").content.decode()
    response = viewer.post(
        f"/orgs/acme/agents/{agent.pk}/promote/", {"confirm": "accept", "changelog": "A changelog"}
    )
    assert response.status_code == 403 and "manager role" in response.content.decode()


def test_pull_dialog_with_a_knowledge_item_deselected_and_a_conflict_overwritten(world):
    dev_access = world.access("developer")
    dev = make_agent(world.acme, "Support", access=dev_access)
    add_component(dev, "skill", "greet", skill(), access=dev_access)
    testing = promote(dev, world.access("tester"))
    add_component(dev, "knowledge", "new-a", knowledge("A", "a"), access=dev_access)
    add_component(dev, "knowledge", "new-b", knowledge("B", "b"), access=dev_access)
    greet = Component.objects.for_org(world.acme).get(agent=testing, name="greet")
    component_update(access=world.access("tester"), component=greet, spec=skill(["hotfix"]))
    tester = signed_in(world.users["tester"])
    page = tester.get(f"/orgs/acme/agents/{testing.pk}/pull/").content.decode()
    assert "<span>2</span> created" in page and "<span>1</span> conflicts" in page
    assert "Advanced options: knowledge (2)" in page and "Download CSV" in page
    a_uid = str(Component.objects.for_org(world.acme).get(agent=dev, name="new-a").uid)
    response = tester.post(
        f"/orgs/acme/agents/{testing.pk}/pull/",
        {"include": [a_uid], "overwrite": [str(greet.uid)], "confirm": "accept", "changelog": "Dev fixes"},
    )
    assert response.status_code == 302
    run_operation_now(Operation.objects.for_org(world.acme).get(kind="agent.pull"))
    names = set(Component.objects.for_org(world.acme).filter(agent=testing).values_list("name", flat=True))
    assert "new-a" in names and "new-b" not in names
    greet.refresh_from_db()
    assert greet.spec["utterances"] == ["hello"]


def test_backport_and_drift_pages(world):
    dev_access = world.access("developer")
    dev = make_agent(world.acme, "Support", access=dev_access)
    add_component(dev, "skill", "greet", skill(), access=dev_access)
    testing = promote(dev, world.access("tester"))
    greet = Component.objects.for_org(world.acme).get(agent=testing, name="greet")
    component_update(access=world.access("tester"), component=greet, spec=skill(["hotfix"], ["Fixed"]))
    tester = signed_in(world.users["tester"])
    page = tester.get(f"/orgs/acme/agents/{testing.pk}/backport/").content.decode()
    assert "greet" in page
    assert (
        tester.post(
            f"/orgs/acme/agents/{testing.pk}/backport/", {"include": [str(greet.uid)], "note": "QA fix"}
        ).status_code
        == 302
    )
    developer = signed_in(world.users["developer"])
    listing = developer.get("/orgs/acme/backports/").content.decode()
    assert "QA fix" in listing and "Apply to Development" in listing
    from rollouts.models import Backport

    backport = Backport.objects.for_org(world.acme).get()
    developer.post("/orgs/acme/backports/", {"backport": str(backport.pk), "confirm": "accept"})
    backport.refresh_from_db()
    assert backport.status == "applied"
    drift = tester.get(f"/orgs/acme/lineages/{dev.lineage.slug}/").content.decode()
    assert "Development → Testing" in drift
    # The developer sees only Development: drift shows what you can see.
    assert (
        "Development → Testing"
        not in developer.get(f"/orgs/acme/lineages/{dev.lineage.slug}/").content.decode()
    )
    assert developer.post("/orgs/acme/backports/", {"backport": "junk"}).status_code == 404


def test_stage_keys_page_shows_a_new_key_once(world):
    admin = signed_in(world.users["admin"])
    page = admin.post("/orgs/acme/stages/production/keys/", {"name": "Website"}).content.decode()
    assert "will not be shown again" in page and "lcs_" in page
    again = admin.get("/orgs/acme/stages/production/keys/").content.decode()
    assert "Website" in again and "will not be shown again" not in again
    assert signed_in(world.users["viewer"]).get("/orgs/acme/stages/production/keys/").status_code == 403
    assert admin.get("/orgs/acme/stages/nope/keys/").status_code == 404
    from rollouts.models import StageKey

    key = StageKey.objects.for_org(world.acme).get()
    admin.post("/orgs/acme/stages/production/keys/", {"revoke": str(key.pk)})
    key.refresh_from_db()
    assert key.revoked_at is not None


def test_console_page(world):
    agent = make_agent(world.acme, "Console bot")
    page = signed_in(world.users["tester"]).get(f"/orgs/acme/agents/{agent.pk}/console/").content.decode()
    assert f'data-ws="/ws/orgs/acme/agents/{agent.pk}/conversation/"' in page
    assert "Rate &amp; save result" in page and "console.js" in page
    assert signed_in(world.users["member"]).get(f"/orgs/acme/agents/{agent.pk}/console/").status_code == 404
    assert signed_in(world.users["tester"]).get(f"/orgs/acme/agents/{agent.pk}/m/console/").status_code == 404
