"""Grants, presence and test results: the resources that hang off one agent."""

from django.utils import timezone

from agents.api.views import GrantViewSet, PresenceViewSet, TestResultViewSet
from agents.models import AgentUserObjectPermission, Presence, TestResult
from agents.services.grants import grant_set
from agents.services.presence import presence_heartbeat
from agents.tests.helpers import AgentChildTests
from lifecycle.access import access_for
from tests.api_mixin import assert_envelope
from tests.factories import add_member, make_agent, owner_access

BASE = "/api/v1/orgs/{org}/agents/{agent}/"


class TestGrantsTenancy(AgentChildTests):
    views = (GrantViewSet,)
    list_url = BASE + "grants/"
    detail_url = BASE + "grants/{id}/"
    reader = "developer"
    forbidden = ("tester", "POST", "list", {"user": "viewer@acme.test", "permissions": ["view"]})
    etag_write = ("owner", "DELETE", None)
    create_payload = {"user": "member@acme.test", "permissions": ["view", "change"]}
    creator = "owner"

    def make_object(self, world, org):
        member = add_member(org)
        grant_set(
            access=owner_access(org),
            agent=self.agent_in(world, org),
            user_ref=member.email,
            permissions=["view"],
        )
        return str(member.pk)

    def count(self, world):
        return AgentUserObjectPermission.objects.for_org(world.acme).count()


class TestPresenceTenancy(AgentChildTests):
    views = (PresenceViewSet,)
    list_url = BASE + "presence/"
    reader = "developer"
    forbidden = ("tester", "POST", "list", {"module": "skills"})
    create_payload = {"module": "skills"}
    creator = "developer"

    def make_object(self, world, org):
        editor = world.users["developer"] if org == world.acme else world.users["outsider"]
        presence_heartbeat(access=access_for(editor, org), agent=self.agent_in(world, org), module="skills")
        return str(editor.pk)

    def listed(self, response):
        return {item["user"]["id"] for item in response.json()["results"]}

    def count(self, world):
        return Presence.objects.for_org(world.acme).count()


class TestTestResultsTenancy(AgentChildTests):
    views = (TestResultViewSet,)
    list_url = BASE + "test-results/"
    detail_url = BASE + "test-results/{id}/"
    reader = "developer"
    create_payload = {
        "duration": 42.5,
        "transcript": [{"role": "user", "text": "hi"}, {"role": "agent", "text": "Hello!"}],
        "rating": 4,
        "notes": "Friendly",
        "status": "passed",
    }
    creator = "tester"

    def make_object(self, world, org):
        from agents.services.testresults import test_result_record

        result = test_result_record(
            access=owner_access(org),
            agent=self.agent_in(world, org),
            duration=1,
            transcript=[],
            rating=3,
            notes="",
            status="failed",
        )
        return str(result.pk)

    def count(self, world):
        return TestResult.objects.for_org(world.acme).count()

    def bad_payloads(self, payload=None, *, partial=False):
        # A transcript may be a list of turns or plain text (API.md): text is not bad input.
        for label, bad in super().bad_payloads(payload, partial=partial):
            if label != "transcript: string instead of list":
                yield label, bad


def test_a_grant_makes_an_agent_visible_and_editable_without_a_stage_role(world):
    agent = make_agent(world.acme, access=world.access("developer"))
    url = f"/api/v1/orgs/acme/agents/{agent.pk}/"
    member = world.client("member")  # no stage role anywhere
    assert_envelope(member.get(url), 404)
    granted = world.client("developer").post(
        url + "grants/", {"user": "member@acme.test", "permissions": ["view"]}, format="json"
    )
    assert granted.status_code == 201 and granted.json()["permissions"] == ["view"]
    assert member.get(url).status_code == 200
    assert [a["id"] for a in member.get("/api/v1/orgs/acme/agents/").json()["results"]] == [str(agent.pk)]
    assert_envelope(member.patch(url, {"name": "Mine now"}, format="json"), 403)
    world.client("developer").post(
        url + "grants/", {"user": "member@acme.test", "permissions": ["view", "change"]}, format="json"
    )
    assert member.patch(url, {"name": "Shared edit"}, format="json").status_code == 200
    # guardian's own backend agrees.
    assert world.users["member"].has_perm("agents.change_agent", agent)
    # Revoke: gone again.
    assert world.client("developer").delete(url + f"grants/{world.users['member'].pk}/").status_code == 204
    assert_envelope(member.get(url), 404)


def test_grants_never_cross_orgs(world):
    agent = make_agent(world.acme)
    response = world.client("owner").post(
        f"/api/v1/orgs/acme/agents/{agent.pk}/grants/",
        {"user": "owner@globex.test", "permissions": ["view"]},
        format="json",
    )
    assert assert_envelope(response, 400)["error"]["fields"] == {
        "user": ["No member of this organization has that email or id."]
    }
    assert not AgentUserObjectPermission.objects.for_org(world.acme).exists()
    assert_envelope(world.client("outsider").get(f"/api/v1/orgs/acme/agents/{agent.pk}/"), 404)


def test_presence_expires_after_two_minutes(world):
    agent = make_agent(world.acme)
    client = world.client("developer")
    url = f"/api/v1/orgs/acme/agents/{agent.pk}/presence/"
    beat = client.post(url, {"module": "knowledge"}, format="json")
    assert beat.status_code == 200
    listed = client.get(url).json()["results"]
    assert [(p["user"]["email"], p["module"]) for p in listed] == [("developer@acme.test", "knowledge")]
    Presence.objects.for_org(world.acme).update(last_seen=timezone.now() - timezone.timedelta(seconds=121))
    assert client.get(url).json()["results"] == []
    since_before = Presence.objects.for_org(world.acme).get().since
    client.post(url, {"module": "knowledge"}, format="json")
    assert Presence.objects.for_org(world.acme).get().since > since_before  # a new streak
    assert_envelope(client.post(url, {"module": "kitchen"}, format="json"), 400)


def test_test_results_carry_stage_and_version(world):
    agent = make_agent(world.acme)
    response = world.client("tester").post(
        f"/api/v1/orgs/acme/agents/{agent.pk}/test-results/",
        {
            "duration": 30,
            "transcript": "user: hi\nagent: hello",
            "rating": 5,
            "notes": "",
            "status": "passed",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (
        body["stage"] == "development"
        and body["version"] == 1
        and body["created_by"]["email"] == "tester@acme.test"
    )
    bad = world.client("tester").post(
        f"/api/v1/orgs/acme/agents/{agent.pk}/test-results/",
        {"duration": 30, "rating": 9, "status": "great"},
        format="json",
    )
    assert set(assert_envelope(bad, 400)["error"]["fields"]) == {"rating", "status"}


def test_a_demoted_owner_cannot_grant_themselves_back_what_they_lost(world):
    from accounts.models import Membership
    from accounts.services.members import member_update
    from lifecycle.audit import AuditEvent

    agent = make_agent(world.acme, access=world.access("developer"))  # developer owns it
    url = f"/api/v1/orgs/acme/agents/{agent.pk}/grants/"
    developer = world.users["developer"]
    membership = Membership.objects.for_org(world.acme).get(user=developer)
    member_update(
        access=owner_access(world.acme), membership=membership, stage_roles={"development": "viewer"}
    )
    client = world.client("developer")
    denied_before = AuditEvent.objects.for_org(world.acme).filter(action="access.denied").count()

    for permissions in (["view", "change", "delete"], ["change"], ["delete"]):
        for grantee in (developer.email, "member@acme.test"):
            response = client.post(url, {"user": grantee, "permissions": permissions}, format="json")
            assert_envelope(response, 403, "forbidden")
    assert not AgentUserObjectPermission.objects.for_org(world.acme).exists()
    denied_after = AuditEvent.objects.for_org(world.acme).filter(action="access.denied").count()
    assert denied_after == denied_before + 6
    assert_envelope(
        world.client("developer").patch(f"/api/v1/orgs/acme/agents/{agent.pk}/", {"name": "x"}), 403
    )

    # What they still hold they may share; a manager of the stage may grant anything.
    assert (
        client.post(url, {"user": "member@acme.test", "permissions": ["view"]}, format="json").status_code
        == 201
    )
    manager = world.client("admin")
    assert (
        manager.post(url, {"user": developer.email, "permissions": ["change"]}, format="json").status_code
        == 201
    )
    # Now holding change through a grant, the owner can share change, but still not delete.
    assert (
        client.post(url, {"user": "member@acme.test", "permissions": ["change"]}, format="json").status_code
        == 201
    )
    assert_envelope(
        client.post(url, {"user": "member@acme.test", "permissions": ["delete"]}, format="json"), 403
    )
