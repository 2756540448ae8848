"""The stage policy: its document, validation, permissions and audit (GET/PUT …/policy/)."""

from accounts.models import Stage
from agents.tests.helpers import AgentChildTests
from lifecycle.audit import AuditEvent
from rollouts.api.policy import GatePreviewView, StagePolicyView
from rollouts.policy import releases_required
from tests.api_mixin import OrgScopedEndpointTests, assert_envelope
from tests.factories import make_agent

POLICY = "/api/v1/orgs/{org}/stages/{stage}/policy/"


def url(stage="testing", org="acme"):
    return POLICY.format(org=org, stage=stage)


class TestStagePolicyTenancy(OrgScopedEndpointTests):
    views = (StagePolicyView,)
    list_url = "/api/v1/orgs/{org}/stages/testing/policy/"
    reader = "admin"
    listable = False
    forbidden = ("tester", "PUT", "list", {"approvals": {"required": 1}})


class TestGatePreviewTenancy(AgentChildTests):
    views = (GatePreviewView,)
    list_url = "/api/v1/orgs/{org}/agents/{agent}/gate/"
    reader = "admin"
    listable = False
    forbidden = None


def test_defaults_are_no_rule_and_releases_required_only_in_the_last_stage(world):
    client = world.client("viewer")
    testing = client.get(url("testing")).json()
    assert testing["gate"]["min_executions"] is None and testing["freeze_windows"] == []
    assert testing["approvals"]["required"] == 0
    assert testing["releases"]["required"] is False
    assert client.get(url("production")).json()["releases"]["required"] is True
    production = Stage.objects.for_org(world.acme).get(slug="production")
    assert releases_required(production) is True
    assert releases_required(Stage.objects.for_org(world.acme).get(slug="testing")) is False


def test_anyone_with_a_role_in_the_stage_reads_others_are_refused(world):
    assert world.client("tester").get(url("testing")).status_code == 200
    # A member with no role in Staging may not read its rules.
    assert_envelope(world.client("tester").get(url("staging")), 403, "forbidden")
    assert_envelope(world.client("member").get(url("testing")), 403, "forbidden")
    # Another org's member: the org is missing, whatever the stage.
    foreign = world.client("outsider").get(url("testing"))
    missing = world.client("outsider").get(url("testing", org="no-such-org"))
    assert_envelope(foreign, 404, "not_found")
    assert foreign.json() == missing.json()
    assert_envelope(world.client("admin").get(url("no-such-stage")), 404, "not_found")


def test_only_owners_and_admins_write_and_a_manager_of_the_stage_gets_403(world):
    response = world.client("tester").put(url("testing"), {"approvals": {"required": 1}}, format="json")
    assert_envelope(response, 403, "forbidden")
    assert world.client("tester").get(url("testing")).json()["approvals"]["required"] == 0
    assert AuditEvent.objects.for_org(world.acme).filter(action="access.denied").exists()


def test_put_replaces_the_whole_document_and_is_audited_with_what_changed(world):
    client = world.client("admin")
    document = {
        "gate": {"min_executions": 100, "min_days": 7, "mode": "any"},
        "approvals": {"required": 2},
        "freeze_windows": [
            {
                "kind": "weekly",
                "days": ["fri"],
                "start": "12:00",
                "end_day": "mon",
                "end": "08:00",
                "timezone": "Europe/Berlin",
                "reason": "no Friday deploys",
            }
        ],
        "releases": {"required": True, "default_strategy": "canary"},
        "action_approvals": {"tools": ["issue_refund"], "timeout": "15m"},
        "spending": {"monthly_budget": "500.00", "alert_at": 0.8, "block": ["live"]},
        "thresholds": {"latency_p95_ms": {"warning": 3000, "critical": 5000}},
    }
    response = client.put(url("testing"), document, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["gate"]["min_executions"] == 100 and body["gate"]["count_sources"] == [
        "live",
        "soak",
        "test_run",
    ]
    window = body["freeze_windows"][0]
    assert window["id"] and window["reason"] == "no Friday deploys"
    assert body["releases"]["required"] is True
    assert client.get(url("testing")).json() == body
    assert releases_required(Stage.objects.for_org(world.acme).get(slug="testing")) is True
    event = AuditEvent.objects.for_org(world.acme).filter(action="stage.policy_updated").get()
    assert event.changes["stage"] == "testing"
    assert event.changes["changed"]["approvals"] == {
        "from": {"required": 0, "expires_in_hours": 72, "groups": []},
        "to": {"required": 2, "expires_in_hours": 72, "groups": []},
    }
    assert "thresholds" in event.changes["changed"]
    # A PUT replaces: omitted parts go back to their defaults ("no rule").
    again = client.put(url("testing"), {"approvals": {"required": 1}}, format="json").json()
    assert again["gate"]["min_executions"] is None and again["freeze_windows"] == []
    assert again["releases"]["required"] is False
    # The ids of windows are kept when sent back.
    client.put(url("testing"), {"freeze_windows": [window]}, format="json")
    assert client.get(url("testing")).json()["freeze_windows"][0]["id"] == window["id"]


def test_stale_if_match_is_412_and_changes_nothing(world):
    client = world.client("admin")
    first = client.get(url("testing"))
    client.put(url("testing"), {"approvals": {"required": 1}}, format="json")
    stale = client.put(
        url("testing"), {"approvals": {"required": 3}}, format="json", HTTP_IF_MATCH=first["ETag"]
    )
    assert_envelope(stale, 412, "precondition_failed")
    assert client.get(url("testing")).json()["approvals"]["required"] == 1


def bad(world, document):
    body = assert_envelope(world.client("admin").put(url("testing"), document, format="json"), 400, "invalid")
    return body["error"]["fields"]


def test_validation_names_every_bad_value_by_its_dotted_path(world):
    weekly = {
        "kind": "weekly",
        "days": ["fri"],
        "start": "12:00",
        "end": "08:00",
        "timezone": "Europe/Berlin",
    }
    assert "freeze_windows.0.timezone" in bad(
        world, {"freeze_windows": [{**weekly, "timezone": "Mars/Olympus"}]}
    )
    assert "freeze_windows.0.timezone" in bad(
        world, {"freeze_windows": [{**weekly, "timezone": "../etc/passwd"}]}
    )
    assert "freeze_windows.0.start" in bad(world, {"freeze_windows": [{**weekly, "start": "25:00"}]})
    assert "freeze_windows.0.days.0" in bad(world, {"freeze_windows": [{**weekly, "days": ["friday"]}]})
    assert "freeze_windows.0.end_day" in bad(world, {"freeze_windows": [{**weekly, "end_day": "someday"}]})
    assert "freeze_windows.0.surprise" in bad(world, {"freeze_windows": [{**weekly, "surprise": 1}]})
    once = {"kind": "once", "starts_at": "2030-01-02T00:00:00Z", "ends_at": "2030-01-01T00:00:00Z"}
    assert "freeze_windows.0.ends_at" in bad(world, {"freeze_windows": [once]})
    assert "freeze_windows.0.starts_at" in bad(
        world, {"freeze_windows": [{**once, "starts_at": "2030-01-01"}]}
    )
    assert "action_approvals.timeout" in bad(world, {"action_approvals": {"timeout": "15 minutes"}})
    assert "action_approvals.timeout" in bad(world, {"action_approvals": {"timeout": "0s"}})
    assert "gaet" in bad(world, {"gaet": {}})
    assert "gate.min_executionz" in bad(world, {"gate": {"min_executionz": 3}})
    assert "gate.min_accuracy" in bad(world, {"gate": {"min_accuracy": 1.5}})
    assert "gate.min_executions" in bad(world, {"gate": {"min_executions": "many"}})
    assert "gate.min_executions" in bad(world, {"gate": {"min_executions": True}})
    assert "gate.count_sources.0" in bad(world, {"gate": {"count_sources": ["prod"]}})
    assert "gate.required_suites.0" in bad(world, {"gate": {"required_suites": ["not-a-uuid"]}})
    assert "approvals.required" in bad(world, {"approvals": {"required": -1}})
    assert "releases.required" in bad(world, {"releases": {"required": "yes"}})
    assert "spending.monthly_budget" in bad(world, {"spending": {"monthly_budget": "lots"}})
    assert "thresholds.latency" in bad(world, {"thresholds": {"latency": {"warning": 1}}})
    assert "thresholds.error_rate.warning" in bad(world, {"thresholds": {"error_rate": {"warning": "x"}}})
    assert "freeze_windows.0.reason" in bad(world, {"freeze_windows": [{**weekly, "reason": "a\x00b"}]})
    fields = bad(world, {"freeze_windows": [{**weekly, "reason": "r" * 501, "timezone": "Nowhere"}]})
    assert {"freeze_windows.0.reason", "freeze_windows.0.timezone"} <= set(fields)
    assert bad(world, ["not", "an", "object"])
    # Nothing was stored by any of these.
    assert world.client("admin").get(url("testing")).json()["freeze_windows"] == []


def test_gate_preview_lists_every_check_without_changing_anything(world):
    agent = make_agent(world.acme)
    world.client("admin").put(
        url("testing"), {"gate": {"min_executions": 5, "min_days": 0, "max_error_rate": 0.01}}, format="json"
    )
    response = world.client("developer").get(f"/api/v1/orgs/acme/agents/{agent.pk}/gate/")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["target"] == "testing" and body["passed"] is False
    assert [(c["name"], c["actual"], c["passed"]) for c in body["checks"]] == [
        ("min_executions", 0, False),
        ("min_days", 0.0, True),
        ("max_error_rate", "no data", False),
    ]
    assert_envelope(
        world.client("developer").get(f"/api/v1/orgs/acme/agents/{agent.pk}/gate/?target=nowhere"),
        400,
        "invalid",
    )
