"""Issue 10's "done when", on the demo data: two Production managers approve the staging
user's promotion from the inbox's evidence, it runs, and a local receiver gets the signed
approval.requested, approval.approved and promotion.succeeded; on a Friday afternoon the
same request is 423 until an admin overrides the freeze with a reason."""

import hashlib
import hmac
from datetime import datetime
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from accounts.models import Organization, User
from agents.models import Agent
from lifecycle.audit import AuditEvent
from lifecycle.operations import Operation
from rollouts import decision
from rollouts.models import TestSuite
from tests.api_mixin import assert_envelope
from tests.http_servers import Recorder

SECRET = "a-receivers-shared-secret-0123"
BODY = {"confirm": "accept", "changelog": "Launch Acme Support", "acknowledge_editors": True}
# Friday 4 December 2026, 15:00 in Berlin: inside the demo's Friday 12:00 → Monday 08:00 freeze.
FRIDAY_AFTERNOON = datetime(2026, 12, 4, 15, 0, tzinfo=ZoneInfo("Europe/Berlin"))
# Wednesday 2 December 2026, 10:00 in Berlin: outside it, whatever day the suite runs.
WEDNESDAY_MORNING = datetime(2026, 12, 2, 10, 0, tzinfo=ZoneInfo("Europe/Berlin"))


def as_user(email):
    client = APIClient()
    client.force_authenticate(User.objects.get(email=email))
    return client


@pytest.fixture
def demo(db):
    call_command("seed_demo")
    return Organization.objects.get(slug="acme")


@pytest.fixture
def clock(monkeypatch):
    """The decision's "now" (freeze windows, gate days), and nothing else's."""

    def at(moment):
        monkeypatch.setattr(decision, "timezone", SimpleNamespace(now=lambda: moment))

    at(WEDNESDAY_MORNING)
    return at


def signed(request) -> bool:
    expected = "sha256=" + hmac.new(SECRET.encode(), request["raw"], hashlib.sha256).hexdigest()
    return hmac.compare_digest(request["headers"].get("X-Lifecycle-Signature", ""), expected)


def test_two_managers_approve_from_the_evidence_and_the_receiver_gets_signed_events(demo, clock, on_commit):
    staging = Agent.objects.for_org(demo).get(lineage__slug="acme-support", stage__slug="staging")
    suite = TestSuite.objects.for_org(demo).get(name="Smoke")
    with Recorder(lambda recorder, request: (200, {"ok": True}, 0)) as receiver:
        hook = as_user("admin@acme.test").post(
            "/api/v1/orgs/acme/webhooks/",
            {"url": receiver.url + "/hooks", "events": ["approval.*", "promotion.*"], "secret": SECRET},
            format="json",
        )
        assert hook.status_code == 201, hook.content
        # Production's gate asks for the Smoke suite at 95 % in Staging first.
        ran = on_commit(
            as_user("staging@acme.test").post,
            f"/api/v1/orgs/acme/agents/{staging.pk}/test-runs/",
            {"suite": str(suite.pk)},
            format="json",
        )
        assert ran.status_code == 202, ran.content

        promote = f"/api/v1/orgs/acme/agents/{staging.pk}/promote/"
        asked = on_commit(as_user("staging@acme.test").post, promote, BODY, format="json")
        assert asked.status_code == 202, asked.content
        operation = asked.json()["operation"]
        assert operation["status"] == "awaiting_approval"
        approval = operation["result"]["approval"]

        # Both other managers see it in their inbox, with the evidence to decide on.
        for who in ("production@acme.test", "admin@acme.test"):
            inbox = as_user(who).get("/api/v1/orgs/acme/approvals/", {"mine": "to_review"}).json()
            assert approval in {r["id"] for r in inbox["results"]}, who
        packet = as_user("production@acme.test").get(f"/api/v1/orgs/acme/approvals/{approval}/").json()
        evidence = packet["evidence"]
        assert packet["requested_by"] and packet["required"] == 2 and packet["kind"] == "promote"
        assert {c["name"]: c["passed"] for c in evidence["gate"]["checks"]} == {
            "required_suites": True,
            "min_accuracy": True,
        }
        assert evidence["diff"] and evidence["test_runs"]
        # The requester may not approve their own change.
        assert_envelope(
            as_user("staging@acme.test").post(
                f"/api/v1/orgs/acme/approvals/{approval}/approve/", {}, format="json"
            ),
            403,
        )
        for who in ("production@acme.test", "admin@acme.test"):
            decided = on_commit(
                as_user(who).post,
                f"/api/v1/orgs/acme/approvals/{approval}/approve/",
                {"comment": "Smoke passes in Staging."},
                format="json",
            )
            assert decided.status_code == 200, decided.content

        assert Operation.objects.for_org(demo).get(pk=operation["id"]).status == "succeeded"
        assert (
            Agent.objects.for_org(demo)
            .filter(lineage__slug="acme-support", stage__slug="production")
            .exists()
        )
        received = [(r["headers"]["X-Lifecycle-Event"], r["body"]) for r in receiver.requests]
        assert all(signed(r) for r in receiver.requests)

    events = [name for name, _ in received]
    assert events.index("approval.requested") < events.index("approval.approved")
    assert events.count("approval.approved") >= 1 and "promotion.succeeded" in events
    assert events.index("promotion.succeeded") > events.index("approval.requested")
    requested = next(body for name, body in received if name == "approval.requested")
    assert requested["event"] == "approval.requested" and requested["org"] == "acme"
    assert SECRET not in str(received)


def test_on_a_friday_afternoon_the_request_is_423_until_an_admin_overrides(demo, clock, on_commit):
    staging = Agent.objects.for_org(demo).get(lineage__slug="acme-support", stage__slug="staging")
    suite = TestSuite.objects.for_org(demo).get(name="Smoke")
    on_commit(
        as_user("staging@acme.test").post,
        f"/api/v1/orgs/acme/agents/{staging.pk}/test-runs/",
        {"suite": str(suite.pk)},
        format="json",
    )
    clock(FRIDAY_AFTERNOON)
    promote = f"/api/v1/orgs/acme/agents/{staging.pk}/promote/"
    frozen = assert_envelope(as_user("staging@acme.test").post(promote, BODY, format="json"), 423, "frozen")
    assert frozen["error"]["details"]["window"]["ends_at"] == "2026-12-07T07:00:00Z"  # Monday 08:00 Berlin
    # Only an org owner or admin may override, and only with a reason.
    override = {**BODY, "override_freeze": {"reason": "Security fix for the refund tool"}}
    assert_envelope(as_user("staging@acme.test").post(promote, override, format="json"), 403)
    no_reason = {**BODY, "override_freeze": {"reason": " "}}
    assert_envelope(as_user("admin@acme.test").post(promote, no_reason, format="json"), 400)
    assert not AuditEvent.objects.for_org(demo).filter(action="stage.freeze_overridden").exists()
    # The admin's override lets the request through to the approvals, audited with its reason.
    asked = as_user("admin@acme.test").post(promote, override, format="json")
    assert asked.status_code == 202, asked.content
    assert asked.json()["operation"]["status"] == "awaiting_approval"
    audited = AuditEvent.objects.for_org(demo).get(action="stage.freeze_overridden")
    assert audited.changes["reason"] == "Security fix for the refund tool"
    assert audited.actor.email == "admin@acme.test"
    # Monday 08:00 in Berlin, the window is over: no override is needed any more.
    clock(datetime(2026, 12, 7, 8, 0, tzinfo=ZoneInfo("Europe/Berlin")))
    preview = (
        as_user("staging@acme.test")
        .get(f"/api/v1/orgs/acme/agents/{staging.pk}/gate/", {"target": "production"})
        .json()
    )
    assert preview["frozen"] is None and preview["passed"] is True
