"""The action-approval inbox over the API: who sees, who decides, once; metrics."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from agents.api.action_approvals import ActionApprovalViewSet
from agents.models import ActionApproval, ConversationSource
from agents.selectors import action_approval_metrics
from agents.services.action_approvals import action_approval_open
from agents.services.conversations import conversation_start
from lifecycle.audit import AuditEvent
from tests.api_mixin import OrgScopedEndpointTests, assert_envelope
from tests.factories import make_agent, make_world

URL = "/api/v1/orgs/acme/action-approvals/"


def waiting_call(org, *, parameters=None, source=ConversationSource.CONSOLE, version=1, turn=1):
    agent = make_agent(org)  # in the org's first stage, development
    conversation = conversation_start(agent=agent, version=version, draft=False, source=source)
    return action_approval_open(
        conversation=conversation,
        turn=turn,
        position=1,
        tool_call_id="call_1",
        tool_name="issue_refund",
        parameters=parameters or {"order_id": "42"},
        user_text="refund order 42",
        timeout_seconds=900,
    )


class TestActionApprovalsTenancy(OrgScopedEndpointTests):
    views = (ActionApprovalViewSet,)
    list_url = "/api/v1/orgs/{org}/action-approvals/"
    detail_url = "/api/v1/orgs/{org}/action-approvals/{id}/"
    reader = "developer"
    forbidden = ("viewer", "POST", "detail", {})

    def make_object(self, world, org):
        return str(waiting_call(org).pk)

    def test_see_but_not_do_is_403_and_audited(self, world):
        # A viewer of Development sees the call but may not decide it.
        lookup = self.make_object(world, world.acme)
        before = AuditEvent.objects.for_org(world.acme).filter(action="access.denied").count()
        response = world.client("viewer").post(f"{URL}{lookup}/approve/", {}, format="json")
        assert_envelope(response, 403, "forbidden")
        assert AuditEvent.objects.for_org(world.acme).filter(action="access.denied").count() == before + 1
        assert ActionApproval.objects.for_org(world.acme).get(pk=lookup).status == "pending"


def test_who_decides(world):
    approval = waiting_call(world.acme)
    # No role in the stage: the call is missing, not forbidden.
    for who in ("member",):
        assert_envelope(
            world.client(who).post(f"{URL}{approval.pk}/approve/", {}, format="json"), 404, "not_found"
        )
        assert str(approval.pk) not in str(world.client(who).get(URL).json())
    assert_envelope(
        world.client("viewer").post(f"{URL}{approval.pk}/reject/", {}, format="json"), 403, "forbidden"
    )
    assert [a["id"] for a in world.client("viewer").get(URL, {"status": "pending"}).json()["results"]] == [
        str(approval.pk)
    ]
    decided = world.client("developer").post(
        f"{URL}{approval.pk}/reject/", {"comment": "not today"}, format="json"
    )
    assert decided.status_code == 200, decided.content
    body = decided.json()
    assert (body["status"], body["comment"], body["decided_by"]["email"]) == (
        "rejected",
        "not today",
        "developer@acme.test",
    )
    assert_envelope(
        world.client("owner").post(f"{URL}{approval.pk}/approve/", {}, format="json"), 409, "conflict"
    )
    assert world.client("viewer").get(URL, {"status": "pending"}).json()["results"] == []
    events = (
        AuditEvent.objects.for_org(world.acme)
        .filter(target_id=str(approval.pk), action__startswith="action_approval.")
        .values_list("action", flat=True)
    )
    assert set(events) == {"action_approval.requested", "action_approval.rejected"}


def test_bad_input_is_400(world):
    approval = waiting_call(world.acme)
    client = world.client("developer")
    for payload in (
        {"comment": "x\x00"},
        {"comment": ["x"]},
        {"comment": "x" * 3000},
        {"coment": "typo"},
        ["a"],
    ):
        assert_envelope(client.post(f"{URL}{approval.pk}/approve/", payload, format="json"), 400, "invalid")
    assert_envelope(client.get(URL, {"status": "maybe"}), 400, "invalid")
    assert_envelope(client.get(f"{URL}metrics/"), 400, "invalid")
    assert_envelope(client.get(f"{URL}metrics/", {"stage": "development", "version": "x"}), 400, "invalid")
    assert_envelope(client.get(f"{URL}metrics/", {"stage": "no-such-stage"}), 404, "not_found")
    assert_envelope(world.client("member").get(f"{URL}metrics/", {"stage": "development"}), 404, "not_found")
    assert ActionApproval.objects.for_org(world.acme).get(pk=approval.pk).status == "pending"


def test_an_expired_call_cannot_be_decided(world):
    approval = waiting_call(world.acme)
    ActionApproval.objects.for_org(world.acme).filter(pk=approval.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    response = world.client("developer").post(f"{URL}{approval.pk}/approve/", {}, format="json")
    assert_envelope(response, 409, "conflict")
    assert response.json()["error"]["details"]["status"] == "expired"
    assert ActionApproval.objects.for_org(world.acme).get(pk=approval.pk).status == "expired"


def test_secrets_in_parameters_are_masked_as_shown(world):
    # The runtime masks parameters before the row is written (see the console and
    # gateway tests); what is stored is what every list shows.
    approval = waiting_call(world.acme, parameters={"order_id": "42", "note": "••••••"})
    listed = world.client("developer").get(URL).json()["results"]
    assert listed[0]["id"] == str(approval.pk) and listed[0]["parameters"]["note"] == "••••••"
    assert listed[0]["user_text"] == "refund order 42" and listed[0]["tool_name"] == "issue_refund"


def test_metrics_per_stage_and_version(world):
    calls = [waiting_call(world.acme, version=v) for v in (1, 1, 1, 2)]
    now = timezone.now()
    rows = ActionApproval.objects.for_org(world.acme)
    rows.filter(pk=calls[0].pk).update(
        status="approved", decided_at=calls[0].requested_at + timedelta(seconds=30)
    )
    rows.filter(pk=calls[1].pk).update(
        status="rejected", decided_at=calls[1].requested_at + timedelta(seconds=90)
    )
    rows.filter(pk=calls[2].pk).update(status="expired", decided_at=now)
    response = world.client("viewer").get(f"{URL}metrics/", {"stage": "development", "version": 1})
    assert response.status_code == 200, response.content
    assert response.json() == {
        "stage": "development",
        "version": 1,
        "requested": 3,
        "pending": 0,
        "approved": 1,
        "rejected": 1,
        "expired": 1,
        "approval_rate": 0.3333,
        "median_seconds_to_decision": 60.0,
    }
    whole = action_approval_metrics(world.acme, calls[0].stage)
    assert (whole["requested"], whole["pending"]) == (4, 1)


def test_the_list_costs_the_same_queries_however_many_rows(world, django_assert_max_num_queries):
    for _ in range(2):
        waiting_call(world.acme)
    client = world.client("developer")
    client.get(URL)
    with django_assert_max_num_queries(12) as few:
        client.get(URL)
    for _ in range(5):
        waiting_call(world.acme)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert len(client.get(URL).json()["results"]) == 7


@pytest.mark.django_db(transaction=True)
def test_two_people_deciding_at_once_one_wins():
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises writers; the race needs row locks (services tier)")
    world = make_world()
    approval = waiting_call(world.acme)
    results = []

    def decide(who, verb):
        results.append(world.client(who).post(f"{URL}{approval.pk}/{verb}/", {}, format="json").status_code)

    threads = [
        threading.Thread(target=decide, args=a) for a in (("developer", "approve"), ("owner", "reject"))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200, 409]
