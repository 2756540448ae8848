"""Back-port hotfixes to the first stage, and the drift report."""

from agents.models import AgentVersion, Component
from agents.services.components import component_update
from agents.tests.helpers import AgentChildTests
from rollouts.api.views import BackportProposeView, BackportViewSet, DriftView
from rollouts.models import Backport
from rollouts.services.backport import backport_propose
from tests.api_mixin import OrgScopedEndpointTests, assert_envelope
from tests.factories import add_component, make_agent, promote, skill


def make_testing_agent(org, access=None):
    dev = make_agent(org, access=access)
    add_component(dev, "skill", "faq", skill(["faq"]))
    return dev, promote(dev)


def hotfix(world, agent, access, name="faq"):
    component = Component.objects.for_org(agent.org_id).get(agent=agent, name=name)
    return component_update(access=access, component=component, spec=skill([name], ["Hotfixed answer."]))


class TestBackportProposeTenancy(AgentChildTests):
    views = (BackportProposeView,)
    list_url = "/api/v1/orgs/{org}/agents/{agent}/backport/"
    reader = "tester"
    listable = False
    forbidden = ("viewer", "POST", "list", {"include": ["00000000-0000-0000-0000-000000000001"]})
    create_payload = {"include": ["00000000-0000-0000-0000-000000000001"], "note": "x"}
    creator = "tester"

    def agent_in(self, world, org):
        cache = world.__dict__.setdefault("_testing_agents", {})
        if org.pk not in cache:
            cache[org.pk] = make_testing_agent(org)[1]
        return cache[org.pk]

    def count(self, world):
        return Backport.objects.for_org(world.acme).count()


class TestBackportsTenancy(OrgScopedEndpointTests):
    views = (BackportViewSet,)
    list_url = "/api/v1/orgs/{org}/backports/"
    detail_url = "/api/v1/orgs/{org}/backports/{id}/"
    reader = "developer"
    forbidden = ("tester", "POST", "detail_apply", {"confirm": "accept"})

    def make_object(self, world, org):
        from tests.factories import owner_access

        access = owner_access(org)
        _, testing = make_testing_agent(org, access)
        hotfix(world, testing, access)
        uid = str(Component.objects.for_org(org).get(agent=testing, name="faq").uid)
        return str(backport_propose(access=access, agent=testing, include=[uid]).pk)

    def url(self, world, kind, org, lookup=None):
        if kind == "detail_apply":
            return f"/api/v1/orgs/{org.slug}/backports/{lookup}/apply/"
        return super().url(world, kind, org, lookup)

    def test_see_but_not_do_is_403_and_audited(self, world):
        # The tester (a viewer of Development) may read a proposal but not apply it.
        lookup = self.make_object(world, world.acme)
        response = world.client("tester").post(
            self.url(world, "detail_apply", world.acme, lookup), {"confirm": "accept"}, format="json"
        )
        assert_envelope(response, 403, "forbidden")


class TestDriftTenancy(OrgScopedEndpointTests):
    views = (DriftView,)
    list_url = "/api/v1/orgs/{org}/lineages/{lineage}/drift/"
    reader = "tester"
    listable = False

    def path_kwargs(self, world, org):
        cache = world.__dict__.setdefault("_lineages", {})
        if org.pk not in cache:
            cache[org.pk] = make_testing_agent(org)[1].lineage.slug
        return {"lineage": cache[org.pk]}


def test_hotfix_flows_back_to_development(world):
    dev, testing = make_testing_agent(world.acme, world.access("developer"))
    hotfix(world, testing, world.access("tester"))
    tester = world.client("tester")
    options = tester.get(f"/api/v1/orgs/acme/agents/{testing.pk}/backport/").json()
    assert options["target_agent"] == str(dev.pk) and options["target_stage"] == "development"
    assert [(i["name"], i["change"]) for i in options["items"]] == [("faq", "updated")]
    proposed = tester.post(
        f"/api/v1/orgs/acme/agents/{testing.pk}/backport/",
        {"include": [options["items"][0]["uid"]], "note": "QA fix for the FAQ answer"},
        format="json",
    )
    assert proposed.status_code == 201, proposed.content
    bid = proposed.json()["id"]
    developer = world.client("developer")
    assert [
        b["id"] for b in developer.get("/api/v1/orgs/acme/backports/", {"status": "open"}).json()["results"]
    ] == [bid]
    detail = developer.get(f"/api/v1/orgs/acme/backports/{bid}/").json()
    (item,) = detail["preview"]
    assert (item["uid"], item["kind"], item["name"], item["change"]) == (
        options["items"][0]["uid"],
        "skill",
        "faq",
        "updated",
    )
    # The reviewer reads the hotfix itself, not only its name.
    assert item["before"]["responses"] == ["Hi there!"]
    assert item["after"]["responses"] == ["Hotfixed answer."]
    assert_envelope(
        developer.post(f"/api/v1/orgs/acme/backports/{bid}/apply/", {"confirm": "nope"}, format="json"), 400
    )
    applied = developer.post(
        f"/api/v1/orgs/acme/backports/{bid}/apply/", {"confirm": "accept"}, format="json"
    )
    assert applied.status_code == 200 and applied.json()["status"] == "applied"
    assert Component.objects.for_org(world.acme).get(agent=dev, name="faq").spec["responses"] == [
        "Hotfixed answer."
    ]
    assert (
        AgentVersion.objects.for_org(world.acme)
        .get(agent=dev, number=applied.json()["applied_version"])
        .reason
        == "backport"
    )
    # Now the stages agree: the next pull only marks the hotfix synced.
    preview = tester.get(f"/api/v1/orgs/acme/agents/{testing.pk}/pull/").json()
    assert preview["counts"] == {"created": 0, "updated": 0, "deleted": 0, "conflict": 0}
    assert preview["in_sync_refresh"] == 1
    assert_envelope(developer.post(f"/api/v1/orgs/acme/backports/{bid}/decline/", {}, format="json"), 409)


def test_decline_and_bad_proposals(world):
    dev, testing = make_testing_agent(world.acme)
    hotfix(world, testing, world.access("tester"))
    tester = world.client("tester")
    uid = str(Component.objects.for_org(world.acme).get(agent=testing, name="faq").uid)
    settings_uid = str(Component.objects.for_org(world.acme).get(agent=testing, kind="settings").uid)
    bad = tester.post(
        f"/api/v1/orgs/acme/agents/{testing.pk}/backport/", {"include": [settings_uid]}, format="json"
    )
    assert "include" in assert_envelope(bad, 400)["error"]["fields"]
    # The first stage's own agent has nowhere to send back-ports.
    first = world.client("developer").post(
        f"/api/v1/orgs/acme/agents/{dev.pk}/backport/", {"include": [uid]}, format="json"
    )
    assert_envelope(first, 409, "conflict")
    assert_envelope(
        world.client("viewer").post(
            f"/api/v1/orgs/acme/agents/{testing.pk}/backport/", {"include": [uid]}, format="json"
        ),
        403,
    )
    bid = tester.post(
        f"/api/v1/orgs/acme/agents/{testing.pk}/backport/", {"include": [uid]}, format="json"
    ).json()["id"]
    declined = world.client("developer").post(
        f"/api/v1/orgs/acme/backports/{bid}/decline/", {"note": "Not needed"}, format="json"
    )
    assert declined.json()["status"] == "declined" and declined.json()["decision_note"] == "Not needed"
    assert Component.objects.for_org(world.acme).get(agent=dev, name="faq").spec["responses"] == ["Hi there!"]


def test_drift_shows_differences_and_hotfixes_between_adjacent_stages(world):
    dev, testing = make_testing_agent(world.acme, world.access("developer"))
    hotfix(world, testing, world.access("tester"))
    add_component(testing, "skill", "qa-extra", skill(["qa"]), access=world.access("tester"))
    add_component(dev, "skill", "new-in-dev", skill(["new"]), access=world.access("developer"))
    report = world.client("admin").get(f"/api/v1/orgs/acme/lineages/{dev.lineage.slug}/drift/").json()
    assert [s["stage"] for s in report["stages"]] == ["development", "testing", "staging", "production"]
    assert report["stages"][2]["agent"] is None
    (pair,) = report["pairs"]
    assert (pair["from"], pair["to"]) == ("development", "testing")
    summary = {(i["name"], i["change"], i["hotfix"]) for i in pair["items"]}
    assert summary == {
        ("new-in-dev", "created", False),
        ("faq", "conflict", True),
        ("qa-extra", "local", True),
    }
    assert_envelope(world.client("admin").get("/api/v1/orgs/acme/lineages/nope/drift/"), 404)


def test_backport_keeps_a_newer_development_change_unless_overwritten(world):
    dev, testing = make_testing_agent(world.acme, world.access("developer"))
    hotfix(world, testing, world.access("tester"))
    uid = str(Component.objects.for_org(world.acme).get(agent=testing, name="faq").uid)
    tester, developer = world.client("tester"), world.client("developer")

    def propose():
        return tester.post(
            f"/api/v1/orgs/acme/agents/{testing.pk}/backport/", {"include": [uid]}, format="json"
        ).json()["id"]

    first, second = propose(), propose()
    # Development moves on after the hotfix's base.
    component_update(
        access=world.access("developer"),
        component=Component.objects.for_org(world.acme).get(agent=dev, name="faq"),
        spec=skill(["faq"], ["Development's newer answer."]),
    )
    (item,) = developer.get(f"/api/v1/orgs/acme/backports/{first}/").json()["preview"]
    assert item["change"] == "conflict"
    assert item["before"]["responses"] == ["Development's newer answer."]
    assert item["after"]["responses"] == ["Hotfixed answer."]

    def dev_text():
        return Component.objects.for_org(world.acme).get(agent=dev, name="faq").spec["responses"]

    applied = developer.post(
        f"/api/v1/orgs/acme/backports/{first}/apply/", {"confirm": "accept"}, format="json"
    )
    assert applied.status_code == 200, applied.content
    assert dev_text() == ["Development's newer answer."]
    # Naming something that is not a conflict is refused.
    other = str(Component.objects.for_org(world.acme).get(agent=dev, kind="settings").uid)
    bad = developer.post(
        f"/api/v1/orgs/acme/backports/{second}/apply/",
        {"confirm": "accept", "overwrite": [other]},
        format="json",
    )
    assert "overwrite" in assert_envelope(bad, 400)["error"]["fields"]
    overwritten = developer.post(
        f"/api/v1/orgs/acme/backports/{second}/apply/",
        {"confirm": "accept", "overwrite": [uid]},
        format="json",
    )
    assert overwritten.status_code == 200, overwritten.content
    assert dev_text() == ["Hotfixed answer."]


def test_a_hotfix_whose_name_is_taken_in_development_is_a_clear_409(world):
    dev, testing = make_testing_agent(world.acme, world.access("developer"))
    tester_access = world.access("tester")
    created = add_component(testing, "skill", "returns", skill(["return"]), access=tester_access)
    bid = str(backport_propose(access=tester_access, agent=testing, include=[str(created.uid)]).pk)
    add_component(dev, "skill", "returns", skill(["returns please"]), access=world.access("developer"))
    response = world.client("developer").post(
        f"/api/v1/orgs/acme/backports/{bid}/apply/", {"confirm": "accept"}, format="json"
    )
    body = assert_envelope(response, 409, "conflict")
    assert "already has another skill 'returns'" in body["error"]["message"]
    assert Backport.objects.for_org(world.acme).get(pk=bid).status == "open"
