"""In the demo, Production requires 2 approvals from its managers: the staging user asks,
the production manager and the admin approve, and the promotion runs."""

from django.core.management import call_command

from accounts.models import Organization, Stage, User
from agents.models import Agent
from approvals.models import ApprovalRequest
from lifecycle.access import access_for
from lifecycle.operations import Operation
from rollouts.models import TestRun, TestSuite
from rollouts.policy import effective_document, stored_document
from rollouts.services.test_runs import test_run_start as start_run
from tests.factories import api_client, run_operation_now


def test_demo_production_waits_for_the_production_manager_and_the_admin(
    db, django_capture_on_commit_callbacks
):
    call_command("seed_demo")
    call_command("seed_demo")  # idempotent: the policy is set once
    org = Organization.objects.get(slug="acme")
    production = Stage.objects.for_org(org).get(slug="production")
    assert effective_document(production)["approvals"]["required"] == 2
    assert stored_document(production)["approvals"] == {"required": 2, "expires_in_hours": 72}

    users = {u.email.split("@")[0]: u for u in User.objects.filter(email__endswith="@acme.test")}
    owner = access_for(users["owner"], org)
    # The demo already took Acme Support to Staging, and Production's gate wants its Smoke
    # suite at 95 % there (rollouts.evaluation_demo): the suite is run in Staging first.
    staging = Agent.objects.for_org(org).get(lineage__slug="acme-support", stage__slug="staging")
    smoke = TestSuite.objects.for_org(org).get(lineage=staging.lineage, name="Smoke")
    ran = run_operation_now(start_run(access=owner, agent=staging, suite=smoke))
    assert TestRun.objects.for_org(org).get(pk=ran.result["run"]).accuracy == 1.0

    asked = api_client(users["staging"]).post(
        f"/api/v1/orgs/acme/agents/{staging.pk}/promote/",
        {"confirm": "accept", "changelog": "Validated against the staging CRM.", "acknowledge_editors": True},
        format="json",
    )
    assert asked.status_code == 202, asked.content
    operation = asked.json()["operation"]
    approval_id = operation["result"]["approval"]
    for who in ("production", "admin"):
        inbox = api_client(users[who]).get("/api/v1/orgs/acme/approvals/", {"mine": "to_review"}).json()
        assert [r["id"] for r in inbox["results"]] == [approval_id], who
    with django_capture_on_commit_callbacks(execute=True):
        first = api_client(users["production"]).post(
            f"/api/v1/orgs/acme/approvals/{approval_id}/approve/",
            {"comment": "Evidence is good."},
            format="json",
        )
        assert first.json()["status"] == "pending"
        second = api_client(users["admin"]).post(
            f"/api/v1/orgs/acme/approvals/{approval_id}/approve/", {}, format="json"
        )
    assert second.json()["status"] == "approved"
    assert ApprovalRequest.objects.for_org(org).get(pk=approval_id).status == "approved"
    done = Operation.objects.for_org(org).get(pk=operation["id"])
    assert done.status == "succeeded", done.error
    assert Agent.objects.for_org(org).get(pk=done.result["agent"]["id"]).stage.slug == "production"
