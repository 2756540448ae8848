"""Existing services emit their events in their own transactions."""

from __future__ import annotations

import json
from datetime import timedelta

from django.utils import timezone

from accounts.models import Stage
from agents.models import Component
from lifecycle.operations import Operation
from rollouts.policy import stage_policy_update
from rollouts.services.backport import backport_decline, backport_propose
from rollouts.services.promotion import agent_promote
from tests.factories import add_component, make_agent, owner_access, promote, run_operation_now, skill
from tests.http_servers import Recorder
from webhooks.models import OutboxEvent
from webhooks.services.webhooks import webhook_create

STAGE_SECRET = "sk-stage-secret-do-not-leak-42"


def events(org, name=None):
    rows = OutboxEvent.objects.for_org(org).order_by("created_at")
    if name:
        rows = rows.filter(event=name)
    return list(rows)


def names(org):
    # Every saved version of an agent in a stage without required releases goes live
    # directly, with its own release events; these tests look at the others.
    return [e.event for e in events(org) if not e.event.startswith("release.")]


def set_policy(world, stage, document):
    stage = Stage.objects.for_org(world.acme).get(slug=stage)
    return stage_policy_update(access=world.access("admin"), stage=stage, document=document)


def test_promotion_requested_and_succeeded_carry_no_secret(world, on_commit):
    agent = make_agent(world.acme, "Support")
    add_component(agent, "variable", "CRM_KEY", {"value": STAGE_SECRET, "secret": True})
    add_component(agent, "variable", "CRM_URL", {"value": "https://crm.dev", "secret": False})
    with Recorder(lambda r, q: (200, {}, 0)) as server:
        webhook_create(
            access=owner_access(world.acme),
            url=server.url,
            events=["promotion.*", "release.*"],
            secret="0123456789abcdef0123",
        )
        operation = on_commit(
            agent_promote, access=world.access("tester"), agent=agent, confirm="accept", changelog="QA"
        )
        on_commit(run_operation_now, operation)
        received = [r["body"]["event"] for r in server.requests]
        raw = b"".join(r["raw"] for r in server.requests).decode()
    assert "promotion.requested" in received and "promotion.succeeded" in received
    assert STAGE_SECRET not in raw
    for row in events(world.acme):
        assert STAGE_SECRET not in json.dumps(row.data)
    [requested] = events(world.acme, "promotion.requested")
    assert requested.data["agent"] == str(agent.pk) and requested.data["to_stage"] == "testing"
    assert requested.data["from_stage"] == "development" and requested.data["by"] == "tester@acme.test"
    [succeeded] = events(world.acme, "promotion.succeeded")
    assert succeeded.data["to_stage"] == "testing" and succeeded.data["source_agent"] == str(agent.pk)
    assert succeeded.data["operation"] == str(operation.pk) and succeeded.data["version"] == 1


def test_a_refused_request_emits_gate_failed(world):
    agent = make_agent(world.acme, "Gated")
    set_policy(world, "testing", {"gate": {"min_executions": 2, "min_days": 0, "mode": "all"}})
    url = f"/api/v1/orgs/acme/agents/{agent.pk}/promote/"
    response = world.client("tester").post(url, {"confirm": "accept", "changelog": "QA"}, format="json")
    assert response.status_code == 409
    [gate] = events(world.acme, "gate.failed")
    assert gate.data["kind"] == "promote" and gate.data["agent"] == str(agent.pk)
    assert gate.data["target_stage"] == "testing" and gate.data["agent_name"] == "Gated"
    assert [c["name"] for c in gate.data["failed_checks"]] == ["min_executions"]
    assert "promotion.requested" not in names(world.acme)


def test_a_failed_recheck_emits_gate_failed_and_promotion_failed(world):
    agent = make_agent(world.acme)
    operation = agent_promote(access=world.access("tester"), agent=agent, confirm="accept", changelog="QA")
    set_policy(world, "testing", {"gate": {"min_executions": 5, "min_days": 0, "mode": "all"}})
    done = run_operation_now(operation)
    assert done.status == "failed" and done.error["code"] == "gate_failed"
    assert names(world.acme) == ["promotion.requested", "gate.failed", "promotion.failed"]
    [failed] = events(world.acme, "promotion.failed")
    assert failed.data["code"] == "gate_failed" and failed.data["operation"] == str(operation.pk)
    assert failed.data["to_stage"] == "testing"


def test_a_frozen_recheck_emits_promotion_failed_only(world):
    agent = make_agent(world.acme)
    operation = agent_promote(access=world.access("tester"), agent=agent, confirm="accept", changelog="QA")
    now = timezone.now()
    window = {
        "id": "now",
        "kind": "once",
        "starts_at": (now - timedelta(hours=1)).isoformat(),
        "ends_at": (now + timedelta(hours=1)).isoformat(),
        "reason": "incident",
    }
    set_policy(world, "testing", {"freeze_windows": [window]})
    assert run_operation_now(operation).status == "failed"
    assert names(world.acme) == ["promotion.requested", "promotion.failed"]
    assert events(world.acme, "promotion.failed")[0].data["code"] == "frozen"


def test_a_direct_release_emits_started_and_succeeded(world):
    agent = make_agent(world.acme)
    assert Operation.objects.for_org(world.acme).count() == 0
    add_component(agent, "skill", "greet", skill())
    from agents.services.versions import version_write

    version_write(actor=world.users["owner"], agent=agent, changelog="v1")
    started = events(world.acme, "release.started")
    assert started and started[-1].data["agent"] == str(agent.pk)
    assert [e.event for e in events(world.acme)][-2:] == ["release.started", "release.succeeded"]


def test_backport_proposed_and_declined(world):
    access = owner_access(world.acme)
    dev = make_agent(world.acme, access=access)
    add_component(dev, "skill", "faq", skill(["faq"]))
    testing = promote(dev)
    from agents.services.components import component_update

    component = Component.objects.for_org(world.acme).get(agent=testing, name="faq")
    component_update(access=access, component=component, spec=skill(["faq"], ["Hotfixed."]))
    backport = backport_propose(access=access, agent=testing, include=[str(component.uid)], note="fix")
    [proposed] = events(world.acme, "backport.proposed")
    assert proposed.data["backport"] == str(backport.pk) and proposed.data["to_stage"] == "development"
    assert proposed.data["from_stage"] == "testing" and proposed.data["agent"] == str(dev.pk)
    backport_decline(access=access, backport=backport, note="not now")
    [declined] = events(world.acme, "backport.declined")
    assert declined.data["note"] == "not now"


def test_a_finished_test_run_emits_test_run_finished(db):
    from accounts.demo import seed_demo_org
    from agents.demo import seed_demo_agent
    from agents.models import Agent
    from agents.runtime.compile import CACHE
    from rollouts.services.test_runs import test_run_start as start_run
    from rollouts.tests.test_test_runs import DEMO_CASES, developer, make_suite

    CACHE.clear()
    org, _ = seed_demo_org()
    agent = seed_demo_agent(org) or Agent.objects.for_org(org).get(name="Acme Support")
    agent = Agent.objects.for_org(org).select_related("stage", "org").get(pk=agent.pk)
    suite = make_suite(agent, DEMO_CASES)
    operation = start_run(access=developer(org), agent=agent, suite=suite)
    assert run_operation_now(operation).status == "succeeded"
    [finished] = events(org, "test_run.finished")
    assert finished.data["run"] == operation.result["run"] and finished.data["suite"] == str(suite.pk)
    assert (finished.data["passed"], finished.data["failed"]) == (2, 1)
    assert finished.data["status"] == "succeeded" and finished.data["agent"] == str(agent.pk)
