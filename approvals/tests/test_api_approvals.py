"""Change approvals over the API: the request a change makes, the inbox, the evidence,
and the decisions (API.md "Approvals")."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from agents.models import Agent, Component
from agents.services.components import component_update
from approvals.api.views import ApprovalViewSet
from approvals.models import ApprovalRequest
from approvals.services.approval import approvals_expire_due
from approvals.tests.helpers import make_approval, require_approvals
from lifecycle.audit import AuditEvent
from lifecycle.operations import Operation
from tests.api_mixin import OrgScopedEndpointTests, assert_envelope
from tests.factories import add_component, add_member, api_client, make_agent, skill

BASE = "/api/v1/orgs/acme/approvals/"


@pytest.fixture
def qa(world):
    """A second manager of Testing: with the owner and the admin, three possible approvers."""
    user = add_member(world.acme, "qa@acme.test", stage_roles={"testing": "manager"})
    world.users["qa"] = user
    return user


def ask(world, who="tester", required=2, **approvals):
    """The tester promotes a fresh Development agent into Testing, which requires approvals."""
    require_approvals(world.acme, "testing", required, **approvals)
    agent = make_agent(world.acme)
    add_component(agent, "skill", "faq", skill(["faq"], ["See our FAQ."]))
    add_component(agent, "variable", "CRM_KEY", {"value": "sk-very-secret-value", "secret": True})
    response = world.client(who).post(
        f"/api/v1/orgs/acme/agents/{agent.pk}/promote/",
        {"confirm": "accept", "changelog": "Ready for QA: the FAQ answers.", "acknowledge_editors": True},
        format="json",
    )
    assert response.status_code == 202, response.content
    operation = response.json()["operation"]
    assert operation["status"] == "awaiting_approval"
    return agent, operation


def decide(world, who, approval_id, action="approve", comment="Looks right.", **extra):
    return world.client(who).post(
        f"{BASE}{approval_id}/{action}/", {"comment": comment}, format="json", **extra
    )


class TestApprovalsTenancy(OrgScopedEndpointTests):
    views = (ApprovalViewSet,)
    list_url = "/api/v1/orgs/{org}/approvals/"
    detail_url = "/api/v1/orgs/{org}/approvals/{id}/"
    reader = "admin"

    def make_object(self, world, org):
        return str(make_approval(org).pk)

    def test_see_but_not_do_is_403_and_audited(self, world):
        # The viewer sees Testing's requests but does not manage Testing.
        lookup = self.make_object(world, world.acme)
        before = AuditEvent.objects.for_org(world.acme).filter(action="access.denied").count()
        response = decide(world, "viewer", lookup)
        assert_envelope(response, 403, "forbidden")
        assert AuditEvent.objects.for_org(world.acme).filter(action="access.denied").count() == before + 1

    def test_a_stale_if_match_on_a_decision_is_412(self, world):
        lookup = self.make_object(world, world.acme)
        client = world.client("admin")
        etag = client.get(f"{BASE}{lookup}/")["ETag"]
        stale = decide(world, "admin", lookup, HTTP_IF_MATCH='"stale"')
        assert_envelope(stale, 412, "precondition_failed")
        assert client.get(f"{BASE}{lookup}/").json()["decisions"] == []
        assert decide(world, "admin", lookup, HTTP_IF_MATCH=etag).status_code == 200

    def test_a_foreign_request_cannot_be_decided_under_your_org(self, world):
        theirs = self.make_object(world, world.globex)
        for action in ("approve", "reject", "cancel"):
            assert_envelope(decide(world, "admin", theirs, action), 404, "not_found")
        request = ApprovalRequest.objects.for_org(world.globex).get(pk=theirs)
        assert request.status == "pending" and not request.decisions.exists()


def test_two_approvals_queue_the_promotion_which_then_runs(world, qa, django_capture_on_commit_callbacks):
    agent, operation = ask(world)
    approval_id = operation["result"]["approval"]
    # The 202 names the request; polling the operation names it too.
    polled = world.client("tester").get(f"/api/v1/orgs/acme/operations/{operation['id']}/").json()
    assert polled["status"] == "awaiting_approval" and polled["result"]["approval"] == approval_id

    inbox = world.client("admin").get(BASE, {"mine": "to_review"}).json()["results"]
    assert [r["id"] for r in inbox] == [approval_id]
    assert world.client("tester").get(BASE, {"mine": "to_review"}).json()["results"] == []  # the requester
    assert world.client("tester").get(BASE, {"status": "pending"}).json()["results"][0]["id"] == approval_id

    detail = world.client("qa").get(f"{BASE}{approval_id}/").json()
    assert detail["kind"] == "promote" and detail["status"] == "pending" and detail["required"] == 2
    assert detail["agent"] == str(agent.pk) and detail["target_stage"] == "testing"
    assert detail["requested_by"]["email"] == "tester@acme.test" and detail["operation"] == operation["id"]
    evidence = detail["evidence"]
    assert evidence["requested"]["reason"] == "Ready for QA: the FAQ answers."
    faq = next(item for item in evidence["diff"]["items"] if item["name"] == "faq")
    assert faq["change"] == "created" and faq["after"]["responses"] == ["See our FAQ."]
    assert "sk-very-secret-value" not in str(detail), "a secret reached the evidence"
    assert {"gate", "test_runs", "red_team", "soak"} <= set(evidence)

    with django_capture_on_commit_callbacks(execute=True):
        first = decide(world, "admin", approval_id)
    assert first.status_code == 200, first.content
    assert first.json()["status"] == "pending" and first.json()["approvals"] == 1
    assert Operation.objects.for_org(world.acme).get(pk=operation["id"]).status == "awaiting_approval"
    assert_envelope(decide(world, "admin", approval_id), 409, "conflict")  # one decision per person
    assert world.client("admin").get(BASE, {"mine": "to_review"}).json()["results"] == []

    with django_capture_on_commit_callbacks(execute=True):
        last = decide(world, "qa", approval_id, comment="")
    assert last.status_code == 200 and last.json()["status"] == "approved"
    done = Operation.objects.for_org(world.acme).get(pk=operation["id"])
    assert done.status == "succeeded", done.error
    clone = Agent.objects.for_org(world.acme).get(pk=done.result["agent"]["id"])
    assert clone.stage.slug == "testing"
    assert [d["user"]["email"] for d in last.json()["decisions"]] == ["admin@acme.test", "qa@acme.test"]
    assert_envelope(decide(world, "owner", approval_id), 409, "conflict")  # decided
    actions = set(AuditEvent.objects.for_org(world.acme).values_list("action", flat=True))
    assert {"approval.requested", "approval.approve", "approval.approved", "agent.promote"} <= actions


def test_who_may_decide(world, qa):
    _, operation = ask(world)
    approval_id = operation["result"]["approval"]
    self_approval = decide(world, "tester", approval_id)
    assert "someone else" in assert_envelope(self_approval, 403, "forbidden")["error"]["message"]
    assert_envelope(decide(world, "viewer", approval_id), 403, "forbidden")  # sees, does not manage
    assert_envelope(decide(world, "developer", approval_id), 404, "not_found")  # no role in Testing
    assert_envelope(decide(world, "member", approval_id), 404, "not_found")
    assert_envelope(decide(world, "qa", approval_id, "cancel"), 403, "forbidden")  # only the requester
    assert ApprovalRequest.objects.for_org(world.acme).get(pk=approval_id).decisions.count() == 0


def test_any_rejection_rejects_and_cancels_the_change(world, qa):
    _, operation = ask(world)
    approval_id = operation["result"]["approval"]
    assert decide(world, "admin", approval_id).status_code == 200
    blank = decide(world, "qa", approval_id, "reject", comment="  ")
    assert "comment" in assert_envelope(blank, 400, "invalid")["error"]["fields"]
    rejected = decide(world, "qa", approval_id, "reject", comment="The FAQ answer is out of date.")
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    assert Operation.objects.for_org(world.acme).get(pk=operation["id"]).status == "cancelled"
    assert_envelope(decide(world, "owner", approval_id), 409, "conflict")
    # The change may be asked for again: the open request is gone.
    agent = Agent.objects.for_org(world.acme).get(pk=rejected.json()["agent"])
    again = world.client("tester").post(
        f"/api/v1/orgs/acme/agents/{agent.pk}/promote/",
        {"confirm": "accept", "changelog": "Again."},
        format="json",
    )
    assert again.status_code == 202, again.content
    assert again.json()["operation"]["result"]["approval"] != approval_id


def test_the_requester_cancels(world):
    _, operation = ask(world)
    approval_id = operation["result"]["approval"]
    cancelled = world.client("tester").post(f"{BASE}{approval_id}/cancel/", {}, format="json")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert Operation.objects.for_org(world.acme).get(pk=operation["id"]).status == "cancelled"
    assert_envelope(world.client("tester").post(f"{BASE}{approval_id}/cancel/", {}, format="json"), 409)
    assert_envelope(decide(world, "admin", approval_id), 409, "conflict")


def test_an_expired_request_is_409_and_the_sweep_cancels_its_operation(world, qa):
    _, operation = ask(world)
    approval_id = operation["result"]["approval"]
    past = timezone.now() - timedelta(minutes=1)
    ApprovalRequest.objects.for_org(world.acme).filter(pk=approval_id).update(expires_at=past)
    response = decide(world, "admin", approval_id)
    assert "expired" in assert_envelope(response, 409, "conflict")["error"]["message"]
    request = ApprovalRequest.objects.for_org(world.acme).get(pk=approval_id)
    assert request.status == "expired" and not request.decisions.exists()
    assert Operation.objects.for_org(world.acme).get(pk=operation["id"]).status == "cancelled"

    _, second = ask(world)
    second_id = second["result"]["approval"]
    ApprovalRequest.objects.for_org(world.acme).filter(pk=second_id).update(expires_at=past)
    assert approvals_expire_due() == 1
    assert ApprovalRequest.objects.for_org(world.acme).get(pk=second_id).status == "expired"
    assert Operation.objects.for_org(world.acme).get(pk=second["id"]).status == "cancelled"
    assert approvals_expire_due() == 0


def test_a_change_to_the_source_voids_the_request(world, qa):
    agent, operation = ask(world)
    approval_id = operation["result"]["approval"]
    assert decide(world, "admin", approval_id).status_code == 200
    faq = Component.objects.for_org(world.acme).get(agent=agent, name="faq")
    component_update(access=world.access("owner"), component=faq, spec=skill(["faq"], ["Something else."]))
    request = ApprovalRequest.objects.for_org(world.acme).get(pk=approval_id)
    assert (request.status, request.closed_reason) == ("cancelled", "source changed")
    assert Operation.objects.for_org(world.acme).get(pk=operation["id"]).status == "cancelled"
    assert_envelope(decide(world, "qa", approval_id), 409, "conflict")
    assert AuditEvent.objects.for_org(world.acme).filter(action="approval.voided").count() == 1


def test_a_source_changed_behind_the_hooks_voids_on_approval(world, qa):
    agent, operation = ask(world)
    approval_id = operation["result"]["approval"]
    # A write that no service announced (a data fix in the database): the approval notices.
    Component.objects.for_org(world.acme).filter(agent=agent, name="faq").update(content_hash="0" * 64)
    response = decide(world, "admin", approval_id)
    assert "changed" in assert_envelope(response, 409, "conflict")["error"]["message"]
    request = ApprovalRequest.objects.for_org(world.acme).get(pk=approval_id)
    assert (request.status, request.closed_reason) == ("cancelled", "source changed")
    assert not request.decisions.exists()


def test_an_operation_cancelled_elsewhere_closes_its_request(world):
    _, operation = ask(world)
    approval_id = operation["result"]["approval"]
    cancelled = world.client("tester").post(f"/api/v1/orgs/acme/operations/{operation['id']}/cancel/")
    assert cancelled.status_code in (200, 202), cancelled.content
    assert_envelope(decide(world, "admin", approval_id), 409, "conflict")
    assert ApprovalRequest.objects.for_org(world.acme).get(pk=approval_id).status == "cancelled"


def test_group_quotas_are_shown_and_enforced(world, qa, django_capture_on_commit_callbacks):
    groups = [{"name": "QA", "members": [str(qa.pk)], "required": 1}]
    _, operation = ask(world, required=1, groups=groups)
    approval_id = operation["result"]["approval"]
    with django_capture_on_commit_callbacks(execute=True):
        admin = decide(world, "admin", approval_id)
    body = admin.json()
    assert body["status"] == "pending" and body["approvals"] == 1  # the count is met, QA's quota is not
    assert body["groups"] == [
        {"name": "QA", "members": [str(qa.pk)], "required": 1, "approved": 0, "met": False}
    ]
    with django_capture_on_commit_callbacks(execute=True):
        last = decide(world, "qa", approval_id)
    assert last.json()["status"] == "approved" and last.json()["groups"][0]["met"] is True
    assert Operation.objects.for_org(world.acme).get(pk=operation["id"]).status == "succeeded"


def test_policy_groups_are_validated(world, qa):
    url = "/api/v1/orgs/acme/stages/testing/policy/"
    admin = world.client("admin")
    outsider = str(world.users["outsider"].pk)
    cases = [
        ({"required": 1, "groups": "QA"}, "approvals.groups"),
        (
            {"required": 1, "groups": [{"name": "", "members": [str(qa.pk)], "required": 1}]},
            "approvals.groups.0.name",
        ),
        (
            {"required": 1, "groups": [{"name": "QA", "members": ["nope"], "required": 1}]},
            "approvals.groups.0.members.0",
        ),
        (
            {"required": 1, "groups": [{"name": "QA", "members": [str(qa.pk)], "required": 2}]},
            "approvals.groups.0.required",
        ),
        (
            {"required": 1, "groups": [{"name": "QA", "members": [str(qa.pk)], "extra": 1}]},
            "approvals.groups.0.extra",
        ),
        (
            {"required": 0, "groups": [{"name": "QA", "members": [str(qa.pk)], "required": 1}]},
            "approvals.required",
        ),
        (
            {"required": 1, "groups": [{"name": "QA", "members": [outsider], "required": 1}]},
            "approvals.groups.0.members.0",
        ),
    ]
    for approvals, path in cases:
        response = admin.put(url, {"approvals": approvals}, format="json")
        assert path in assert_envelope(response, 400, "invalid")["error"]["fields"], (
            approvals,
            response.json(),
        )
    ok = admin.put(
        url,
        {"approvals": {"required": 1, "groups": [{"name": "QA", "members": [str(qa.pk)], "required": 1}]}},
        format="json",
    )
    assert ok.status_code == 200 and ok.json()["approvals"]["groups"][0]["name"] == "QA"


def test_bad_input_is_400_never_500(world, qa):
    _, operation = ask(world)
    approval_id = operation["result"]["approval"]
    client = world.client("admin")
    for body in (
        {"comment": "x" * 5001},
        {"comment": "nul\x00"},
        {"comment": ["a"]},
        {"commnet": "typo"},
        ["not", "an", "object"],
    ):
        assert_envelope(client.post(f"{BASE}{approval_id}/approve/", body, format="json"), 400, "invalid")
    malformed = client.post(f"{BASE}{approval_id}/approve/", data="{nope", content_type="application/json")
    assert_envelope(malformed, 400, "invalid")
    for query in ({"status": "open"}, {"mine": "everything"}):
        assert_envelope(client.get(BASE, query), 400, "invalid")
    assert_envelope(client.get(f"{BASE}not-a-uuid/"), 404, "not_found")
    assert ApprovalRequest.objects.for_org(world.acme).get(pk=approval_id).decisions.count() == 0


def test_pull_and_release_wait_for_approval_with_their_diffs(world, qa, django_capture_on_commit_callbacks):
    from tests.factories import promote

    dev = make_agent(world.acme)
    add_component(dev, "skill", "faq", skill(["faq"], ["Old answer."]))
    testing = promote(dev)
    faq = Component.objects.for_org(world.acme).get(agent=dev, name="faq")
    component_update(access=world.access("owner"), component=faq, spec=skill(["faq"], ["New answer."]))
    require_approvals(world.acme, "testing", 1)
    pulled = world.client("tester").post(
        f"/api/v1/orgs/acme/agents/{testing.pk}/pull/",
        {"confirm": "accept", "changelog": "Again."},
        format="json",
    )
    assert pulled.status_code == 202, pulled.content
    assert pulled.json()["operation"]["status"] == "awaiting_approval"
    pull_id = pulled.json()["operation"]["result"]["approval"]
    evidence = world.client("qa").get(f"{BASE}{pull_id}/").json()["evidence"]
    (item,) = evidence["diff"]["items"]
    assert (item["change"], item["before"]["responses"], item["after"]["responses"], item["applies"]) == (
        "updated",
        ["Old answer."],
        ["New answer."],
        True,
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert decide(world, "qa", pull_id).json()["status"] == "approved"
    assert Component.objects.for_org(world.acme).get(agent=testing, name="faq").spec["responses"] == [
        "New answer."
    ]

    testing.refresh_from_db()
    released = world.client("tester").post(
        f"/api/v1/orgs/acme/agents/{testing.pk}/releases/",
        {"version": testing.version, "strategy": "direct", "changelog": "Ship the new answer."},
        format="json",
    )
    assert released.status_code == 202, released.content
    release_id = released.json()["operation"]["result"]["approval"]
    detail = world.client("admin").get(f"{BASE}{release_id}/").json()
    assert detail["kind"] == "release" and detail["evidence"]["diff"]["candidate_version"] == testing.version
    with django_capture_on_commit_callbacks(execute=True):
        assert decide(world, "qa", release_id).json()["status"] == "approved"
    testing.refresh_from_db()
    assert testing.live_version == testing.version


def test_list_queries_do_not_grow_with_the_page(world):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(2):
        ask(world)
    client = world.client("admin")
    client.get(BASE)  # warm the token and membership lookups alike
    with CaptureQueriesContext(connection) as few:
        client.get(BASE)
    for _ in range(4):
        ask(world)
    decide(world, "admin", ApprovalRequest.objects.for_org(world.acme).first().pk)
    with CaptureQueriesContext(connection) as many:
        response = client.get(BASE)
    assert len(response.json()["results"]) == 6
    assert len(many.captured_queries) <= len(few.captured_queries)


def test_a_token_of_another_org_sees_nothing(world):
    make_approval(world.acme)
    outsider = api_client(world.users["outsider"])
    assert_envelope(outsider.get(BASE), 404, "not_found")


def test_every_transition_is_an_event_for_webhooks(world, qa, django_capture_on_commit_callbacks):
    from webhooks.models import OutboxEvent

    def events():
        return list(
            OutboxEvent.objects.for_org(world.acme)
            .filter(event__startswith="approval.")
            .order_by("created_at")
            .values_list("event", "data")
        )

    _, operation = ask(world)
    approval_id = operation["result"]["approval"]
    decide(world, "admin", approval_id)
    with django_capture_on_commit_callbacks(execute=True):
        decide(world, "qa", approval_id)
    (requested, requested_data), (approved, approved_data) = events()
    assert (requested, approved) == ("approval.requested", "approval.approved")
    assert requested_data["approval"] == approval_id and requested_data["target_stage"] == "testing"
    assert requested_data["requested_by"]["email"] == "tester@acme.test"
    assert [d["user"]["email"] for d in approved_data["decisions"]] == ["admin@acme.test", "qa@acme.test"]

    _, second = ask(world)
    decide(world, "qa", second["result"]["approval"], "reject", comment="No.")
    _, third = ask(world)
    ApprovalRequest.objects.for_org(world.acme).filter(pk=third["result"]["approval"]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    approvals_expire_due()
    assert [e for e, _ in events()][2:] == [
        "approval.requested",
        "approval.rejected",
        "approval.requested",
        "approval.expired",
    ]
    assert "sk-very-secret-value" not in str(events())
