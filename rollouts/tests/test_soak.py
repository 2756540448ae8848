"""Soak tests: percentiles against a webhook with set delays, error rate, cancel, API, gate."""

import threading
import time

import pytest
from django.core.cache import cache

from agents.models import Conversation
from agents.runtime.compile import CACHE
from agents.services.versions import version_save
from agents.tests.helpers import AgentChildTests
from lifecycle.operations import Operation
from lifecycle.operations.checkpoints import _cancel_key
from rollouts.api.soak import SoakTestViewSet
from rollouts.decision import gate_checks
from rollouts.models import SoakTest
from rollouts.services.soak import percentile, soak_start, soak_summary
from tests.api_mixin import assert_envelope
from tests.factories import add_component, make_agent, owner_access, run_operation_now, signed_in, skill
from tests.http_servers import Recorder

SOAKS = "/api/v1/orgs/{org}/agents/{agent}/soak-tests/"


def webhook_agent(org, url):
    """An agent whose one skill calls a tool webhook: its latency is the webhook's."""
    CACHE.clear()
    agent = make_agent(org, "Soaked")
    add_component(
        agent,
        "tool",
        "lookup",
        {
            "description": "d",
            "parameters": {"type": "object", "properties": {}},
            "webhook_url": url,
            "timeout_seconds": 5,
        },
    )
    add_component(agent, "skill", "status", skill(["order status"], ["It is {{tool.state}}."], tool="lookup"))
    return agent


def soak_of(operation) -> SoakTest:
    return SoakTest.objects.for_org(operation.org_id).get(pk=operation.result["soak"])


def test_nearest_rank_percentile_on_a_known_list():
    values = list(range(1, 101))  # 1..100
    assert percentile(values, 50) == 50 and percentile(values, 95) == 95 and percentile(values, 99) == 99
    assert percentile([7], 99) == 7 and percentile([], 50) is None
    # Nearest rank never invents a value between two measurements.
    assert percentile([10, 20, 30, 40], 50) == 20 and percentile([10, 20, 30, 40], 95) == 40
    summary = soak_summary([1.0] * 9 + [100.0] * 1 + [5.0] * 10, errors=2, elapsed=2.0)
    assert summary["error_rate"] == 0.1 and summary["throughput_per_s"] == 10.0
    assert summary["drift"] == {"p95_first_tenth_ms": 1.0, "p95_last_tenth_ms": 5.0}


def test_percentiles_and_drift_follow_the_webhooks_set_delays(world):
    # 20 executions one at a time: the first 10 calls answer at once, the last 10 after 400 ms.
    # The bounds compare the two halves, not wall-clock overhead, which a loaded machine inflates.
    def handler(recorder, request):
        return 200, {"state": "ok"}, 0.0 if len(recorder.requests) <= 10 else 0.4

    with Recorder(handler) as server:
        agent = webhook_agent(world.acme, server.url + "/hook")
        operation = soak_start(
            access=owner_access(world.acme), agent=agent, executions=20, concurrency=1, version="draft"
        )
        done = run_operation_now(operation)
    assert done.status == "succeeded", done.error
    soak = soak_of(done)
    assert soak.status == "succeeded" and soak.executions == 20 and soak.errors == 0 and soak.error_rate == 0
    assert len(server.requests) == 20
    p = soak.latency_ms
    # p50 is rank 10, the last fast one; p95 and p99 are slow ones, 400 ms more.
    assert 400 <= p["p95"] <= p["p99"] and p["p95"] - p["p50"] >= 300
    assert soak.drift["p95_last_tenth_ms"] >= 400
    assert soak.drift["p95_last_tenth_ms"] - soak.drift["p95_first_tenth_ms"] >= 300
    assert soak.throughput_per_s and soak.throughput_per_s > 0
    stored = Conversation.objects.for_org(world.acme).filter(agent=agent, source="soak")
    assert stored.count() == 20 and all(c.draft for c in stored)
    assert done.result["soak"] == str(soak.pk) and done.result["executions"] == 20


def test_error_rate_counts_executions_whose_webhook_failed(world):
    # Every fourth call answers 404 (not retried): 5 of 20 executions fail.
    def handler(recorder, request):
        return (404 if len(recorder.requests) % 4 == 0 else 200), {"state": "ok"}, 0

    with Recorder(handler) as server:
        agent = webhook_agent(world.acme, server.url + "/hook")
        done = run_operation_now(
            soak_start(
                access=owner_access(world.acme), agent=agent, executions=20, concurrency=4, version="draft"
            )
        )
    soak = soak_of(done)
    assert soak.executions == 20 and soak.errors == 5 and soak.error_rate == 0.25
    errored = Conversation.objects.for_org(world.acme).filter(agent=agent, source="soak", error_count__gt=0)
    assert errored.count() == 5


def test_a_cancelled_soak_stops_within_seconds(world):
    # Each call takes 100 ms; 10 000 executions one at a time would take over 16 minutes.
    def handler(recorder, request):
        if len(recorder.requests) == 5:
            # What operation_cancel does first for running work; the handler's next checkpoint sees it.
            cache.set(_cancel_key(operation.pk), True)
        return 200, {"state": "ok"}, 0.1

    with Recorder(handler) as server:
        agent = webhook_agent(world.acme, server.url + "/hook")
        operation = soak_start(
            access=owner_access(world.acme), agent=agent, executions=10_000, concurrency=1, version="draft"
        )
        started = time.monotonic()
        done = run_operation_now(operation)
        took = time.monotonic() - started
    assert done.status == "cancelled"
    assert took < 5
    soak = soak_of(operation)
    assert soak.status == "cancelled" and 5 <= soak.executions < 10
    assert len(server.requests) < 10


def test_a_duration_soak_ends_when_its_time_is_up(world):
    agent = make_agent(world.acme)
    agent.version or version_save(access=owner_access(world.acme), agent=agent, changelog="v1")
    started = time.monotonic()
    done = run_operation_now(
        soak_start(
            access=owner_access(world.acme), agent=agent, executions=None, duration="1s", concurrency=2
        )
    )
    assert done.status == "succeeded" and 1 <= time.monotonic() - started < 5
    soak = soak_of(done)
    assert soak.executions >= 2 and soak.errors == 0 and soak.version is not None


@pytest.mark.parametrize(
    "body,field",
    [
        ({"executions": 0}, "executions"),
        ({"executions": 10_001}, "executions"),
        ({"concurrency": 17}, "concurrency"),
        ({"concurrency": 0}, "concurrency"),
        ({"duration": "25h"}, "duration"),
        ({"duration": "2d"}, "duration"),
        ({"duration": "soon"}, "duration"),
        ({}, "executions"),
        ({"executions": 5, "version": 99}, "version"),
        ({"executions": 5, "version": "latest"}, "version"),
        ({"executions": 5, "suite": "00000000-0000-4000-8000-000000000000"}, "suite"),
    ],
)
def test_bad_requests_are_400_with_the_field(world, body, field):
    agent = make_agent(world.acme)
    before = SoakTest.objects.for_org(world.acme).count()
    response = world.client("owner").post(SOAKS.format(org="acme", agent=agent.pk), body, format="json")
    error = assert_envelope(response, 400, "invalid")["error"]
    assert field in error["fields"], error
    assert SoakTest.objects.for_org(world.acme).count() == before


def test_api_starts_a_soak_and_reads_it(world):
    agent = make_agent(world.acme)
    client = world.client("owner")
    response = client.post(SOAKS.format(org="acme", agent=agent.pk), {"executions": 3}, format="json")
    assert response.status_code == 202, response.content
    operation = response.json()["operation"]
    sid = operation["result"]["soak"]
    run_operation_now(Operation.objects.for_org(world.acme).get(pk=operation["id"]))
    body = client.get(SOAKS.format(org="acme", agent=agent.pk) + f"{sid}/").json()
    assert body["status"] == "succeeded" and body["executions"] == 3 and body["errors"] == 0
    assert set(body["latency_ms"]) == {"p50", "p95", "p99"}
    assert set(body["drift"]) == {"p95_first_tenth_ms", "p95_last_tenth_ms"}
    listed = client.get(SOAKS.format(org="acme", agent=agent.pk)).json()
    assert [row["id"] for row in listed["results"]] == [sid]


def test_gate_require_soak_and_max_error_rate_read_the_latest_versions_soak(world):
    agent = make_agent(world.acme)
    gate = {"require_soak": True, "max_error_rate": 0.01}
    checks, passed = gate_checks(gate, agent)
    by_name = {c["name"]: c for c in checks}
    assert not passed and by_name["require_soak"]["actual"] == "no data"
    assert by_name["max_error_rate"]["actual"] == "no data" and not by_name["max_error_rate"]["passed"]
    run_operation_now(soak_start(access=owner_access(world.acme), agent=agent, executions=2))
    checks, passed = gate_checks(gate, agent)
    by_name = {c["name"]: c for c in checks}
    assert passed, checks
    assert by_name["require_soak"]["passed"] and by_name["max_error_rate"]["actual"] == 0
    # A soak of the working copy is no evidence about a saved version.
    version_save(access=owner_access(world.acme), agent=agent, changelog="v2")
    agent.refresh_from_db()
    run_operation_now(soak_start(access=owner_access(world.acme), agent=agent, executions=2, version="draft"))
    checks, passed = gate_checks(gate, agent)
    assert not passed and {c["name"]: c for c in checks}["require_soak"]["actual"] == "no data"


class TestSoakTenancy(AgentChildTests):
    views = (SoakTestViewSet,)
    list_url = SOAKS
    detail_url = SOAKS + "{id}/"
    reader = "developer"
    forbidden = ("viewer", "POST", "list", {"executions": 1})
    create_payload = {"executions": 2, "concurrency": 1}
    creator = "developer"

    def make_object(self, world, org):
        agent = self.agent_in(world, org)
        return soak_start(access=owner_access(org), agent=agent, executions=1).result["soak"]

    def count(self, world):
        return SoakTest.objects.for_org(world.acme).count()


def test_soak_runs_executions_concurrently(world):
    # Four at once: four calls are in the webhook together at least once.
    inside, most = [0], [0]
    lock = threading.Lock()

    def handler(recorder, request):
        with lock:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        time.sleep(0.1)
        with lock:
            inside[0] -= 1
        return 200, {"state": "ok"}, 0

    with Recorder(handler) as server:
        agent = webhook_agent(world.acme, server.url + "/hook")
        done = run_operation_now(
            soak_start(
                access=owner_access(world.acme), agent=agent, executions=8, concurrency=4, version="draft"
            )
        )
    assert soak_of(done).executions == 8 and most[0] == 4


def test_soak_tab_starts_a_soak_and_lists_its_results(world):
    agent = make_agent(world.acme)
    page = f"/orgs/acme/agents/{agent.pk}/soak/"
    browser = signed_in(world.users["owner"])
    shown = browser.get(page)
    assert (
        shown.status_code == 200
        and b"Start a soak test" in shown.content
        and b"No soak tests yet" in shown.content
    )
    # The agent's tabs link to it.
    assert f'href="{page}"'.encode() in browser.get(f"/orgs/acme/agents/{agent.pk}/").content
    refused = browser.post(page, {"executions": "0", "concurrency": "4", "version": "draft"})
    assert refused.status_code == 200 and b"executions" in refused.content
    assert not SoakTest.objects.for_org(world.acme).exists()
    started = browser.post(
        page, {"executions": "3", "concurrency": "2", "duration": "", "suite": "", "version": "draft"}
    )
    assert started.status_code == 302 and "/operations/" in started["Location"]
    soak = SoakTest.objects.for_org(world.acme).get()
    run_operation_now(soak.operation)
    listed = browser.get(page).content.decode()
    assert "succeeded" in listed and "draft" in listed
    # A viewer reads the results but has no form, and a post is refused.
    viewer = signed_in(world.users["viewer"])
    assert b"Start a soak test" not in viewer.get(page).content
    assert viewer.post(page, {"executions": "3"}).status_code == 403


def test_a_soak_cancelled_before_it_started_reads_as_cancelled(world):
    from lifecycle.operations import operation_cancel

    agent = make_agent(world.acme)
    operation = soak_start(access=owner_access(world.acme), agent=agent, executions=5)
    operation_cancel(actor=world.users["owner"], operation=operation)
    sid = operation.result["soak"]
    body = world.client("owner").get(SOAKS.format(org="acme", agent=agent.pk) + f"{sid}/").json()
    assert body["status"] == "cancelled" and body["executions"] == 0
    page = signed_in(world.users["owner"]).get(f"/orgs/acme/agents/{agent.pk}/soak/").content.decode()
    assert "status-cancelled" in page


def test_a_promotion_waits_for_a_soak_of_the_latest_version_with_few_errors(world):
    from rollouts.tests.test_decision import promote_request, set_policy

    # Every call of the agent's one tool fails: its soaks have an error rate of 1.
    with Recorder(lambda recorder, request: (404, {}, 0)) as server:
        agent = webhook_agent(world.acme, server.url + "/hook")
        version_save(access=owner_access(world.acme), agent=agent, changelog="with the tool")
        agent.refresh_from_db()
        set_policy(world, "testing", {"gate": {"require_soak": True, "max_error_rate": 0.1}})
        body = assert_envelope(promote_request(world, "tester", agent), 409, "gate_failed")
        assert [(c["name"], c["actual"], c["passed"]) for c in body["error"]["details"]["checks"]] == [
            ("require_soak", "no data", False),
            ("max_error_rate", "no data", False),
        ]
        run_operation_now(soak_start(access=owner_access(world.acme), agent=agent, executions=4))
        body = assert_envelope(promote_request(world, "tester", agent), 409, "gate_failed")
        assert [(c["name"], c["actual"], c["passed"]) for c in body["error"]["details"]["checks"]] == [
            ("require_soak", True, True),
            ("max_error_rate", 1.0, False),
        ]
    # The tool fixed (a local server that answers), a new soak of the same version passes.
    with Recorder(lambda recorder, request: (200, {"state": "ok"}, 0)) as server:
        from agents.models import Component
        from agents.services.components import component_update

        tool = Component.objects.for_org(world.acme).get(agent=agent, kind="tool")
        component_update(
            access=owner_access(world.acme),
            component=tool,
            spec={**tool.spec, "webhook_url": server.url + "/hook"},
        )
        agent.refresh_from_db()
        version_save(access=owner_access(world.acme), agent=agent, changelog="tool fixed")
        agent.refresh_from_db()
        run_operation_now(soak_start(access=owner_access(world.acme), agent=agent, executions=4))
        assert promote_request(world, "tester", agent).status_code == 202
