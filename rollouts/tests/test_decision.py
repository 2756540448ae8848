"""The one decision every change into a stage asks: freeze windows, gate checks, approvals."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from accounts.models import Stage
from agents.models import Agent, Conversation
from lifecycle.audit import AuditEvent
from lifecycle.operations import Operation
from rollouts.decision import change_decide, open_window
from rollouts.policy import policy_validate, stage_policy_update
from tests.api_mixin import assert_envelope
from tests.factories import make_agent, promote, run_operation_now


def z(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def windows(*raw) -> list[dict]:
    return policy_validate({"freeze_windows": list(raw)})["freeze_windows"]


BERLIN_WEEKEND = {
    "id": "weekend",
    "kind": "weekly",
    "days": ["fri"],
    "start": "12:00",
    "end_day": "mon",
    "end": "08:00",
    "timezone": "Europe/Berlin",
    "reason": "no Friday deploys",
}


def test_weekly_window_keeps_its_wall_clock_edges_across_dst():
    frozen = windows(BERLIN_WEEKEND)
    # Autumn: clocks went back on Sunday 26 Oct 2025, so Monday 08:00 is 07:00Z (CET).
    assert open_window(frozen, z("2025-10-27T06:59:00Z")) == {
        "id": "weekend",
        "reason": "no Friday deploys",
        "ends_at": "2025-10-27T07:00:00Z",
    }
    assert open_window(frozen, z("2025-10-27T07:00:00Z")) is None
    # Friday 12:00 was still CEST: 10:00Z.
    assert open_window(frozen, z("2025-10-24T09:59:00Z")) is None
    assert open_window(frozen, z("2025-10-24T10:00:00Z"))["ends_at"] == "2025-10-27T07:00:00Z"
    # Spring: clocks went forward on Sunday 30 Mar 2025, so Monday 08:00 is 06:00Z (CEST).
    assert open_window(frozen, z("2025-03-31T05:59:00Z"))["ends_at"] == "2025-03-31T06:00:00Z"
    assert open_window(frozen, z("2025-03-31T06:30:00Z")) is None
    # Friday 28 Mar 12:00 was CET: 11:00Z.
    assert open_window(frozen, z("2025-03-28T10:30:00Z")) is None
    assert open_window(frozen, z("2025-03-28T11:00:00Z")) is not None


def test_weekly_window_across_midnight_and_the_weekend():
    nightly = windows(
        {"id": "n", "kind": "weekly", "days": ["tue"], "start": "22:00", "end": "06:00", "timezone": "UTC"}
    )
    # end is not after start: it ends the next day (end_day defaults to it).
    assert open_window(nightly, z("2025-06-03T21:59:00Z")) is None  # Tuesday
    assert open_window(nightly, z("2025-06-03T23:00:00Z"))["ends_at"] == "2025-06-04T06:00:00Z"
    assert open_window(nightly, z("2025-06-04T05:59:00Z")) is not None  # Wednesday morning
    assert open_window(nightly, z("2025-06-04T06:00:00Z")) is None
    assert open_window(nightly, z("2025-06-10T23:30:00Z")) is not None  # the next Tuesday
    weekend = windows(
        {
            "id": "w",
            "kind": "weekly",
            "days": ["fri"],
            "start": "18:00",
            "end_day": "mon",
            "end": "06:00",
            "timezone": "America/New_York",
        }
    )
    # Sunday noon in New York (EDT, UTC-4) is inside; Monday 06:30 is not.
    assert open_window(weekend, z("2025-06-08T16:00:00Z"))["ends_at"] == "2025-06-09T10:00:00Z"
    assert open_window(weekend, z("2025-06-09T10:30:00Z")) is None
    assert open_window(weekend, z("2025-06-05T16:00:00Z")) is None  # Thursday
    # A same-day window with end after start.
    lunch = windows({"id": "l", "kind": "weekly", "days": ["wed"], "start": "12:00", "end": "13:00"})
    assert open_window(lunch, z("2025-06-04T12:30:00Z"))["ends_at"] == "2025-06-04T13:00:00Z"
    assert open_window(lunch, z("2025-06-05T12:30:00Z")) is None


def test_once_window():
    once = windows(
        {
            "id": "launch",
            "kind": "once",
            "starts_at": "2025-12-20T00:00:00+01:00",
            "ends_at": "2026-01-05T00:00:00+01:00",
            "reason": "holidays",
        }
    )
    assert open_window(once, z("2025-12-19T22:59:00Z")) is None
    assert open_window(once, z("2025-12-24T12:00:00Z")) == {
        "id": "launch",
        "reason": "holidays",
        "ends_at": "2026-01-04T23:00:00Z",
    }
    assert open_window(once, z("2026-01-04T23:00:00Z")) is None


# --- through the services and the API ------------------------------------------------
PROMOTE = "/api/v1/orgs/acme/agents/{agent}/promote/"


def set_policy(world, stage: str, document: dict):
    stage = Stage.objects.for_org(world.acme).get(slug=stage)
    return stage_policy_update(access=world.access("admin"), stage=stage, document=document)


def open_now(reason="release freeze") -> dict:
    now = timezone.now()
    return {
        "id": "now",
        "kind": "once",
        "starts_at": (now - timedelta(hours=1)).isoformat(),
        "ends_at": (now + timedelta(hours=2)).isoformat(),
        "reason": reason,
    }


def promote_request(world, who, agent, **extra):
    return world.client(who).post(
        PROMOTE.format(agent=agent.pk), {"confirm": "accept", "changelog": "QA", **extra}, format="json"
    )


def test_promote_inside_a_window_is_423_with_the_window(world):
    agent = make_agent(world.acme)
    set_policy(world, "testing", {"freeze_windows": [open_now()]})
    body = assert_envelope(promote_request(world, "tester", agent), 423, "frozen")
    window = body["error"]["details"]["window"]
    assert window["id"] == "now" and window["reason"] == "release freeze" and window["ends_at"].endswith("Z")
    assert not Operation.objects.for_org(world.acme).exists()


def test_override_by_an_admin_passes_and_is_audited_with_its_reason(world, on_commit):
    agent = make_agent(world.acme)
    set_policy(world, "testing", {"freeze_windows": [open_now()]})
    response = on_commit(
        promote_request, world, "admin", agent, override_freeze={"reason": "hotfix for the outage"}
    )
    assert response.status_code == 202, response.content
    operation = Operation.objects.for_org(world.acme).get()
    assert operation.status == "succeeded", operation.error
    assert operation.params["decision"]["freeze"]["overridden"] is True
    event = AuditEvent.objects.for_org(world.acme).get(action="stage.freeze_overridden")
    assert event.changes["reason"] == "hotfix for the outage" and event.changes["window"]["id"] == "now"
    request = AuditEvent.objects.for_org(world.acme).get(action="agent.promote.request")
    assert request.changes["decision"]["freeze"]["override"]["reason"] == "hotfix for the outage"
    # No reason: refused with the field named.
    body = assert_envelope(
        promote_request(world, "admin", make_agent(world.acme), override_freeze={"reason": " "}),
        400,
        "invalid",
    )
    assert any(key.startswith("override_freeze") for key in body["error"]["fields"]), body


def test_override_by_anyone_else_is_403(world):
    agent = make_agent(world.acme)
    set_policy(world, "testing", {"freeze_windows": [open_now()]})
    response = promote_request(world, "tester", agent, override_freeze={"reason": "I am in a hurry"})
    assert_envelope(response, 403, "forbidden")
    # Even outside a window: only owners and admins may ask for an override.
    set_policy(world, "testing", {})
    response = promote_request(world, "tester", agent, override_freeze={"reason": "just in case"})
    assert_envelope(response, 403, "forbidden")
    assert not AuditEvent.objects.for_org(world.acme).filter(action="stage.freeze_overridden").exists()


def test_gate_failed_lists_every_check_passing_ones_too(world):
    agent = make_agent(world.acme)
    set_policy(
        world,
        "testing",
        {
            "gate": {
                "min_executions": 2,
                "min_days": 0,
                "mode": "all",
                "min_accuracy": 0.9,
                "require_soak": True,
            }
        },
    )
    body = assert_envelope(promote_request(world, "tester", agent), 409, "gate_failed")
    checks = body["error"]["details"]["checks"]
    assert [(c["name"], c["actual"], c["required"], c["passed"]) for c in checks] == [
        ("min_executions", 0, 2, False),
        ("min_days", 0.0, 0, True),
        ("min_accuracy", "no data", 0.9, False),
        ("require_soak", "no data", True, False),
    ]


def conversation(agent, source):
    return Conversation.objects.create(
        org=agent.org, agent=agent, stage_id=agent.stage_id, version=max(agent.version, 1), source=source
    )


def test_executions_count_only_the_sources_named_and_mode_any_takes_either(world):
    agent = make_agent(world.acme)
    testing = Stage.objects.for_org(world.acme).get(slug="testing")
    set_policy(world, "testing", {"gate": {"min_executions": 2, "min_days": 7, "mode": "any"}})
    conversation(agent, "console")
    conversation(agent, "live")

    def decide():
        return change_decide(access=world.access("tester"), kind="promote", agent=agent, target_stage=testing)

    first = decide()
    assert first.checks[0]["actual"] == 1 and not first.gate_passed  # console does not count
    conversation(agent, "test_run")
    second = decide()
    assert second.checks[0]["passed"] and not second.checks[1]["passed"]
    assert second.gate_passed  # "any": executions suffice though days do not
    set_policy(world, "testing", {"gate": {"min_executions": 2, "min_days": 7, "mode": "all"}})
    assert not decide().gate_passed
    # Days in the stage count from the agent's arrival there.
    Agent.objects.for_org(world.acme).filter(pk=agent.pk).update(
        created_at=timezone.now() - timedelta(days=8)
    )
    agent.refresh_from_db()
    assert decide().gate_passed


def test_the_decision_is_asked_again_when_the_operation_runs(world):
    from rollouts.services.promotion import agent_promote

    agent = make_agent(world.acme)
    operation = agent_promote(access=world.access("tester"), agent=agent, confirm="accept", changelog="QA")
    assert operation.params["decision"]["freeze"] is None
    # A window opens between the request and the run: the run fails, and says why.
    set_policy(world, "testing", {"freeze_windows": [open_now("incident")]})
    done = run_operation_now(operation)
    assert done.status == "failed" and done.error["code"] == "frozen", done.error
    assert done.error["details"]["window"]["reason"] == "incident"
    assert not Agent.objects.for_org(world.acme).filter(stage__slug="testing").exists()
    blocked = AuditEvent.objects.for_org(world.acme).get(action="agent.promote.blocked")
    assert (
        blocked.changes["code"] == "frozen" and blocked.changes["decision"]["freeze"]["window"]["id"] == "now"
    )


def test_approvals_required_starts_the_operation_awaiting_approval(world):
    agent = make_agent(world.acme)
    set_policy(world, "testing", {"approvals": {"required": 2}})
    response = promote_request(world, "tester", agent)
    assert response.status_code == 202, response.content
    assert response.json()["operation"]["status"] == "awaiting_approval"
    operation = Operation.objects.for_org(world.acme).get()
    assert operation.params["decision"]["approvals_required"] == 2
    run_operation_now(operation)  # nothing runs it before approvals exist (issue 10)
    assert not Agent.objects.for_org(world.acme).filter(stage__slug="testing").exists()


def test_pull_asks_the_decision_and_stores_it(world):
    agent = make_agent(world.acme)
    clone = promote(agent)
    set_policy(world, "testing", {"freeze_windows": [open_now()]})
    pull = f"/api/v1/orgs/acme/agents/{clone.pk}/pull/"
    assert_envelope(
        world.client("tester").post(pull, {"confirm": "accept", "changelog": "Pull"}, format="json"),
        423,
        "frozen",
    )
    set_policy(world, "testing", {"approvals": {"required": 1}})
    response = world.client("tester").post(pull, {"confirm": "accept", "changelog": "Pull"}, format="json")
    assert response.status_code == 202 and response.json()["operation"]["status"] == "awaiting_approval"
    operation = Operation.objects.for_org(world.acme).get(kind="agent.pull")
    assert operation.params["decision"]["kind"] == "pull" and operation.params["decision"]["agent"] == str(
        agent.pk
    )


def test_restore_into_a_frozen_stage_is_423_and_an_admin_may_override(world):
    from agents.services.versions import version_save

    agent = make_agent(world.acme)
    version_save(access=world.access("owner"), agent=agent, changelog="second")
    set_policy(world, "development", {"freeze_windows": [open_now()]})
    restore = f"/api/v1/orgs/acme/agents/{agent.pk}/restore/"
    response = world.client("developer").post(restore, {"version": 1, "changelog": "back"}, format="json")
    assert_envelope(response, 423, "frozen")
    agent.refresh_from_db()
    versions = agent.version
    response = world.client("admin").post(
        restore,
        {"version": 1, "changelog": "back", "override_freeze": {"reason": "bad release"}},
        format="json",
    )
    assert response.status_code == 201, response.content
    agent.refresh_from_db()
    assert agent.version == versions + 1
    event = AuditEvent.objects.for_org(world.acme).get(action="version.restore")
    assert event.changes["decision"]["freeze"]["override"]["reason"] == "bad release"


@pytest.mark.parametrize("kind", ["promote", "pull", "release"])
def test_approvals_apply_to_the_kinds_that_run_as_operations(world, kind):
    testing = Stage.objects.for_org(world.acme).get(slug="testing")
    set_policy(world, "testing", {"approvals": {"required": 1}})
    agent = make_agent(world.acme)
    decision = change_decide(access=world.access("admin"), kind=kind, agent=agent, target_stage=testing)
    assert decision.approvals_required == 1
    restore = change_decide(access=world.access("admin"), kind="restore", agent=agent, target_stage=testing)
    assert restore.approvals_required == 0
    assert decision.to_json()["decided_at"] <= datetime.now(UTC).isoformat()


def test_backport_apply_into_a_frozen_first_stage_is_423_and_stores_the_decision(world):
    from agents.models import Component
    from rollouts.models import Backport
    from rollouts.services.backport import backport_propose
    from rollouts.tests.test_api_backport import hotfix, make_testing_agent

    _, testing = make_testing_agent(world.acme, world.access("developer"))
    hotfix(world, testing, world.access("tester"))
    uid = str(Component.objects.for_org(world.acme).get(agent=testing, name="faq").uid)
    backport = backport_propose(access=world.access("tester"), agent=testing, include=[uid])
    set_policy(world, "development", {"freeze_windows": [open_now()]})
    apply = f"/api/v1/orgs/acme/backports/{backport.pk}/apply/"
    body = assert_envelope(
        world.client("developer").post(apply, {"confirm": "accept"}, format="json"), 423, "frozen"
    )
    assert body["error"]["details"]["window"]["id"] == "now"
    assert Backport.objects.for_org(world.acme).get(pk=backport.pk).status == "open"
    set_policy(world, "development", {})
    response = world.client("developer").post(apply, {"confirm": "accept"}, format="json")
    assert response.status_code == 200, response.content
    event = AuditEvent.objects.for_org(world.acme).get(action="backport.apply")
    assert event.changes["decision"]["kind"] == "backport" and event.changes["decision"]["freeze"] is None
