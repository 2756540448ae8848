"""The README's demo walkthrough on the seeded data: Production's gate (95 % on the Smoke
suite) refuses a promotion from Staging until the suite passes in Staging."""

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from accounts.models import Organization, Stage, User
from agents.models import Agent, Conversation
from lifecycle.access import access_for
from lifecycle.operations import Operation
from rollouts.models import RedTeamRun, SoakTest, TestCase, TestRun, TestSuite
from rollouts.policy import effective_document, stage_policy_update, stored_document
from tests.api_mixin import assert_envelope


@pytest.fixture
def demo(db):
    call_command("seed_demo")
    org = Organization.objects.get(slug="acme")
    # The demo also freezes Production from Friday noon to Monday morning, which answers
    # 423 before any gate is asked: these tests are about the gate, whatever the day.
    production = Stage.objects.for_org(org).get(slug="production")
    owner = access_for(User.objects.get(email="owner@acme.test"), org)
    stage_policy_update(
        access=owner, stage=production, document={**stored_document(production), "freeze_windows": []}
    )
    return org


def as_user(email):
    client = APIClient()
    client.force_authenticate(User.objects.get(email=email))
    return client


def agent_in(org, stage):
    return Agent.objects.for_org(org).get(lineage__slug="acme-support", stage__slug=stage)


def test_the_seed_builds_the_walkthroughs_evidence(demo):
    suite = TestSuite.objects.for_org(demo).get(name="Smoke")
    cases = TestCase.objects.for_org(demo).filter(suite=suite)
    assert cases.count() == 10
    from_console = cases.exclude(source_conversation=None)
    assert from_console.count() == 3
    assert {c.source_conversation.source for c in from_console} == {"console"}
    testing = agent_in(demo, "testing")
    runs = TestRun.objects.for_org(demo).filter(agent=testing).order_by("version")
    # Two points on the chart: v1 misses gift cards, v2 knows them.
    assert [(r.version, r.accuracy, r.status) for r in runs] == [(1, 0.9, "succeeded"), (2, 1.0, "succeeded")]
    failed = next(c for c in runs[0].cases if not c["passed"])
    assert failed["name"] == "Gift cards" and failed["reasons"][0]["got"].startswith("Sorry")
    red = RedTeamRun.objects.for_org(demo).get(agent=testing)
    assert red.status == "succeeded" and red.version == 2 and red.attacks > 0 and red.table
    # Every case and every attack is a stored conversation (source test_run).
    assert Conversation.objects.for_org(demo).filter(source="test_run").count() == 20 + red.attacks
    soak = SoakTest.objects.for_org(demo).get(agent=testing)
    assert soak.status == "succeeded" and soak.executions == 100
    assert Conversation.objects.for_org(demo).filter(source="soak").count() == 100
    staging = agent_in(demo, "staging")
    assert staging.version == 1 and not TestRun.objects.for_org(demo).filter(agent=staging).exists()
    gate = effective_document(Stage.objects.for_org(demo).get(slug="production"))["gate"]
    assert gate["min_accuracy"] == 0.95 and gate["required_suites"] == [str(suite.pk)]


def test_seeding_twice_adds_nothing(demo):
    before = (TestRun.objects.for_org(demo).count(), Agent.objects.for_org(demo).count())
    call_command("seed_demo")
    assert (TestRun.objects.for_org(demo).count(), Agent.objects.for_org(demo).count()) == before
    assert TestSuite.objects.for_org(demo).count() == 1


def test_production_refuses_the_promotion_until_the_suite_passes_in_staging(demo, on_commit):
    staging = agent_in(demo, "staging")
    suite = TestSuite.objects.for_org(demo).get(name="Smoke")
    promote = f"/api/v1/orgs/acme/agents/{staging.pk}/promote/"
    body = {"confirm": "accept", "changelog": "Launch", "acknowledge_editors": True}
    production = as_user("production@acme.test")

    refused = production.post(promote, body, format="json")
    assert_envelope(refused, 409, "gate_failed")
    checks = {c["name"]: c for c in refused.json()["error"]["details"]["checks"]}
    assert checks["min_accuracy"] == {
        "name": "min_accuracy",
        "actual": "no data",
        "required": 0.95,
        "passed": False,
    }
    assert checks["required_suites"]["passed"] is False
    # The preview says the same without changing anything.
    preview = production.get(f"/api/v1/orgs/acme/agents/{staging.pk}/gate/?target=production").json()
    assert {c["name"]: c["passed"] for c in preview["checks"]} == {
        "required_suites": False,
        "min_accuracy": False,
    }
    assert not Agent.objects.for_org(demo).filter(stage__slug="production").exists()

    # The staging manager runs the suite in Staging: it passes, 10 of 10.
    started = on_commit(
        as_user("staging@acme.test").post,
        f"/api/v1/orgs/acme/agents/{staging.pk}/test-runs/",
        {"suite": str(suite.pk)},
        format="json",
    )
    assert started.status_code == 202, started.content
    run = TestRun.objects.for_org(demo).get(pk=started.json()["operation"]["result"]["run"])
    assert (run.status, run.version, run.accuracy) == ("succeeded", 1, 1.0)

    allowed = production.post(promote, body, format="json")
    assert allowed.status_code == 202, allowed.content
    # Past the gate, the change waits for Production's two approvals (the demo's policy).
    asked = allowed.json()["operation"]
    assert asked["status"] == "awaiting_approval"
    approval = asked["result"]["approval"]
    for who in ("staging@acme.test", "admin@acme.test"):
        url = f"/api/v1/orgs/acme/approvals/{approval}/approve/"
        decided = on_commit(as_user(who).post, url, {"comment": "Smoke passes in Staging."}, format="json")
        assert decided.status_code == 200, decided.content
    operation = Operation.objects.for_org(demo).get(pk=asked["id"])
    assert operation.status == "succeeded", operation.error
    # The gate was asked again when the operation ran: both checks pass on the run in Staging.
    decided = operation.params["decision"]["checks"]
    passed = {c["name"]: (c["actual"], c["passed"]) for c in decided}
    assert passed == {"required_suites": ([str(suite.pk)], True), "min_accuracy": (1.0, True)}
    assert agent_in(demo, "production").version == 1


def test_a_failing_run_in_staging_keeps_the_gate_shut(demo, on_commit):
    """Below 95 % is refused with the accuracy it got, not "no data"."""
    from agents.models import Component
    from agents.services.components import component_delete
    from agents.services.versions import version_save
    from lifecycle.access import access_for

    staging = agent_in(demo, "staging")
    manager = access_for(User.objects.get(email="staging@acme.test"), demo)
    gift = Component.objects.for_org(demo).get(agent=staging, name="gift-cards")
    component_delete(access=manager, component=gift)
    staging.refresh_from_db()
    version_save(access=manager, agent=staging, changelog="Gift cards dropped")
    suite = TestSuite.objects.for_org(demo).get(name="Smoke")
    on_commit(
        as_user("staging@acme.test").post,
        f"/api/v1/orgs/acme/agents/{staging.pk}/test-runs/",
        {"suite": str(suite.pk)},
        format="json",
    )
    refused = as_user("production@acme.test").post(
        f"/api/v1/orgs/acme/agents/{staging.pk}/promote/",
        {"confirm": "accept", "changelog": "Launch", "acknowledge_editors": True},
        format="json",
    )
    assert_envelope(refused, 409, "gate_failed")
    checks = {c["name"]: c for c in refused.json()["error"]["details"]["checks"]}
    assert checks["min_accuracy"]["actual"] == 0.9 and checks["required_suites"]["passed"] is True


def test_the_tests_tab_shows_each_suites_latest_runs_and_runs_it(demo):
    from tests.factories import signed_in

    testing = agent_in(demo, "testing")
    suite = TestSuite.objects.for_org(demo).get(name="Smoke")
    tester = signed_in(User.objects.get(email="tester@acme.test"))
    page = tester.get(f"/orgs/acme/agents/{testing.pk}/tests/").content.decode()
    runs = page[page.index('class="suite-runs-table"') :]
    assert runs.index("v2") < runs.index("v1")  # newest first
    assert "100 %" in runs and "90 %" in runs and "(9/10)" in runs
    assert "Run on v2" in page
    # The button posts to the Test runs page, which starts the run.
    response = tester.post(
        f"/orgs/acme/agents/{testing.pk}/test-runs/", {"suite": str(suite.pk), "version": "2"}
    )
    assert response.status_code == 302 and "/operations/" in response["Location"]
    assert TestRun.objects.for_org(demo).filter(agent=testing).count() == 3
    # Someone who may only read sees the runs, not the button.
    viewer = signed_in(User.objects.get(email="viewer@acme.test"))
    page = viewer.get(f"/orgs/acme/agents/{testing.pk}/tests/").content.decode()
    assert 'class="suite-runs-table"' in page and "Run on v2" not in page
