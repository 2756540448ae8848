"""Test runs: a suite through the runtime, per-case results, accuracy, and the accuracy gate."""

import uuid

import pytest

from accounts.demo import seed_demo_org
from agents.demo import seed_demo_agent
from agents.models import Agent, Component, Conversation
from agents.runtime.compile import CACHE
from agents.services.versions import version_save
from agents.tests.helpers import AgentChildTests
from lifecycle.access import access_for
from lifecycle.errors import Forbidden, Invalid
from rollouts.api.test_runs import TestRunViewSet
from rollouts.expectations import evaluate, failures
from rollouts.models import TestCase, TestRun, TestSuite
from rollouts.services.test_runs import test_run_start as start_run
from tests.api_mixin import assert_envelope
from tests.factories import add_component, make_agent, owner_access, promote, run_operation_now, skill

from .test_decision import set_policy
from .test_releases import fresh, reply_with

RUNS = "/api/v1/orgs/{org}/agents/{agent}/test-runs/"


# --- expectations ------------------------------------------------------------------------
RESULT = {
    "text": "Order 12345 has shipped and should arrive in 2 days.",
    "intent": "order_status",
    "tools": [{"tool": "lookup_order", "arguments": {"order_id": "12345", "verbose": True}}],
    "sources": ["k-1"],
    "latency_ms": 120,
}


@pytest.mark.parametrize(
    ("expectation", "passed"),
    [
        ({"type": "contains", "value": "SHIPPED"}, True),
        ({"type": "contains", "value": "refund"}, False),
        ({"type": "must_not_contain", "value": "refund"}, True),
        ({"type": "must_not_contain", "value": "2 days"}, False),
        ({"type": "equals", "value": " Order 12345 has shipped and should arrive in 2 days. "}, True),
        ({"type": "equals", "value": "Order 12345 has shipped."}, False),
        ({"type": "regex", "value": r"order \d{5}"}, True),
        ({"type": "regex", "value": r"^\d+$"}, False),
        ({"type": "similar_to", "value": "order 12345 shipped, arrives in 2 days", "threshold": 0.6}, True),
        ({"type": "similar_to", "value": "Sorry, I cannot help with that.", "threshold": 0.8}, False),
        ({"type": "intent", "value": "order_status"}, True),
        ({"type": "intent", "value": "greeting"}, False),
        ({"type": "tool_called", "tool": "lookup_order", "arguments": {"order_id": "12345"}}, True),
        ({"type": "tool_called", "tool": "lookup_order", "arguments": {}}, True),
        ({"type": "tool_called", "tool": "lookup_order", "arguments": {"order_id": "99999"}}, False),
        ({"type": "tool_called", "tool": "issue_refund", "arguments": {}}, False),
        ({"type": "grounded_in", "knowledge": "k-1"}, True),
        ({"type": "grounded_in", "knowledge": "k-2"}, False),
        ({"type": "max_latency_ms", "value": 120}, True),
        ({"type": "max_latency_ms", "value": 100}, False),
    ],
)
def test_each_expectation_type(expectation, passed):
    assert evaluate(expectation, RESULT)[0] is passed


def test_a_failed_expectation_says_what_was_expected_and_what_came_back():
    reasons = failures(2, [{"type": "contains", "value": "refund"}, {"type": "intent", "value": "x"}], RESULT)
    assert reasons == [
        {"turn": 2, "type": "contains", "expected": "refund", "got": RESULT["text"]},
        {"turn": 2, "type": "intent", "expected": "x", "got": "order_status"},
    ]


def test_a_regex_runs_in_linear_time_and_a_pattern_re2_refuses_never_passes():
    assert evaluate({"type": "regex", "value": "^(a+)+$"}, {"text": "a" * 50_000 + "!"})[0] is False
    assert evaluate({"type": "regex", "value": r"(a)\1"}, {"text": "aa"})[0] is False


# --- runs --------------------------------------------------------------------------------
@pytest.fixture
def demo(db):
    CACHE.clear()
    org, _ = seed_demo_org()
    agent = seed_demo_agent(org) or Agent.objects.for_org(org).get(name="Acme Support")
    return Agent.objects.for_org(org).select_related("stage", "org").get(pk=agent.pk)


def make_suite(agent, cases, name="Regression") -> TestSuite:
    suite = TestSuite.objects.create(org_id=agent.org_id, lineage_id=agent.lineage_id, name=name)
    for position, (case_name, turns) in enumerate(cases):
        TestCase.objects.create(
            org_id=agent.org_id, suite=suite, name=case_name, turns=turns, position=position
        )
    return suite


DEMO_CASES = [
    (
        "order status",
        [
            {
                "user": "Where is order #12345?",
                "expect": [
                    {"type": "intent", "value": "order_status"},
                    {"type": "tool_called", "tool": "lookup_order", "arguments": {"order_id": "12345"}},
                    {"type": "contains", "value": "shipped"},
                    {"type": "max_latency_ms", "value": 10_000},
                ],
            }
        ],
    ),
    (
        "asks then answers",
        [
            {"user": "where is my order", "expect": [{"type": "contains", "value": "order number"}]},
            {"user": "It's 98765", "expect": [{"type": "regex", "value": r"Order 98765 has shipped"}]},
        ],
    ),
    (
        "wrong on purpose",
        [
            {
                "user": "hello",
                "expect": [{"type": "contains", "value": "refund"}, {"type": "intent", "value": "greeting"}],
            }
        ],
    ),
]


def developer(org):
    from accounts.models import User

    return access_for(User.objects.get(email="developer@acme.test"), org)


def test_a_run_plays_each_case_as_a_stored_conversation_and_records_accuracy(demo):
    suite = make_suite(demo, DEMO_CASES)
    operation = start_run(access=developer(demo.org), agent=demo, suite=suite)
    run = TestRun.objects.for_org(demo.org).get(pk=operation.result["run"])
    assert (run.status, run.version) == ("queued", demo.version)
    done = run_operation_now(operation)
    assert done.status == "succeeded", done.error
    run.refresh_from_db()
    assert (run.status, run.passed, run.failed, run.accuracy) == ("succeeded", 2, 1, round(2 / 3, 4))
    assert run.finished_at is not None and done.result["run"] == str(run.pk)
    by_name = {c["name"]: c for c in run.cases}
    assert by_name["order status"]["passed"] and by_name["asks then answers"]["passed"]
    wrong = by_name["wrong on purpose"]
    assert not wrong["passed"]
    # Only the failing expectation is reported, with what came back.
    assert wrong["reasons"] == [
        {"turn": 0, "type": "contains", "expected": "refund", "got": "Hello! How can I help you today?"}
    ]
    conversations = Conversation.objects.for_org(demo.org).filter(
        pk__in=[c["conversation"] for c in run.cases]
    )
    assert {c.source for c in conversations} == {"test_run"} and conversations.count() == 3
    two_turns = conversations.get(pk=by_name["asks then answers"]["conversation"])
    # The first message, then two user turns each answered.
    assert [t.role for t in two_turns.turns.order_by("index")] == ["agent", "user", "agent", "user", "agent"]
    assert run.scores["latency_ms"]["p95"] is not None
    # The evaluators scored every case, and the answers' safety defect rates are stored.
    assert set(by_name["order status"]["scores"]) == {
        "relevance",
        "groundedness",
        "intent_resolution",
        "tool_call_accuracy",
    }
    assert by_name["order status"]["scores"]["tool_call_accuracy"] == 1.0
    assert by_name["order status"]["scores"]["intent_resolution"] == 1.0
    assert 0 <= run.scores["relevance"] <= 1 and 0 < run.scores["tool_call_accuracy"] <= 1
    assert run.safety == {"violence": 0.0, "sexual": 0.0, "self_harm": 0.0, "hate": 0.0}


def test_a_draft_run_plays_the_working_copy_and_a_version_run_the_saved_one(demo):
    greeting = Component.objects.for_org(demo.org).get(agent=demo, name="greeting")
    from agents.services.components import component_update

    component_update(
        access=owner_access(demo.org), component=greeting, spec={**greeting.spec, "responses": ["Howdy!"]}
    )
    suite = make_suite(
        demo, [("hello", [{"user": "hello", "expect": [{"type": "equals", "value": "Howdy!"}]}])]
    )
    draft = run_operation_now(
        start_run(access=developer(demo.org), agent=fresh(demo), suite=suite, version="draft")
    )
    saved = run_operation_now(
        start_run(access=developer(demo.org), agent=fresh(demo), suite=suite, version=1)
    )
    draft_run = TestRun.objects.for_org(demo.org).get(pk=draft.result["run"])
    saved_run = TestRun.objects.for_org(demo.org).get(pk=saved.result["run"])
    assert (draft_run.version, draft_run.accuracy) == (None, 1.0)
    assert (saved_run.version, saved_run.accuracy) == (1, 0.0)
    conversation = Conversation.objects.for_org(demo.org).get(pk=draft_run.cases[0]["conversation"])
    assert conversation.draft is True


def test_who_may_run_and_what_is_refused(demo):
    suite = make_suite(demo, DEMO_CASES[:1])
    from accounts.models import User

    viewer = access_for(User.objects.get(email="viewer@acme.test"), demo.org)
    with pytest.raises(Forbidden):
        start_run(access=viewer, agent=demo, suite=suite)
    with pytest.raises(Invalid) as missing:
        start_run(access=developer(demo.org), agent=demo, suite=suite, version=7)
    assert "version" in missing.value.fields
    empty = make_suite(demo, [], name="Empty")
    with pytest.raises(Invalid) as nothing:
        start_run(access=developer(demo.org), agent=demo, suite=empty)
    assert "suite" in nothing.value.fields
    assert not TestRun.objects.for_org(demo.org).exists()


def test_a_finished_run_is_not_run_again_on_a_second_delivery(demo):
    suite = make_suite(demo, DEMO_CASES[:1])
    operation = start_run(access=developer(demo.org), agent=demo, suite=suite)
    run_operation_now(operation)
    run = TestRun.objects.for_org(demo.org).get(pk=operation.result["run"])
    from rollouts.services.test_runs import test_run_execute

    assert test_run_execute(operation) == {"run": str(run.pk)}
    assert Conversation.objects.for_org(demo.org).filter(source="test_run").count() == 1
    again = TestRun.objects.for_org(demo.org).get(pk=run.pk)
    assert (again.cases, again.finished_at) == (run.cases, run.finished_at)


# --- API ---------------------------------------------------------------------------------
SUITE_ID = uuid.UUID("5e1fe5e1-0000-4000-8000-000000000001")


class TestTestRunsTenancy(AgentChildTests):
    views = (TestRunViewSet,)
    list_url = RUNS
    detail_url = RUNS + "{id}/"
    reader = "developer"
    forbidden = ("viewer", "POST", "list", {"suite": str(SUITE_ID)})
    create_payload = {"suite": str(SUITE_ID), "version": 1}
    creator = "developer"

    def agent_in(self, world, org):
        agent = super().agent_in(world, org)
        if org == world.acme and not TestSuite.objects.for_org(org).filter(pk=SUITE_ID).exists():
            add_component(agent, "skill", "greeting", skill(["hello"], ["Hi there!"]))
            version_save(access=owner_access(org), agent=agent, changelog="greeting")
            suite = TestSuite.objects.create(pk=SUITE_ID, org=org, lineage_id=agent.lineage_id, name="API")
            TestCase.objects.create(org=org, suite=suite, name="hi", turns=[{"user": "hello", "expect": []}])
        return fresh(agent)

    def make_object(self, world, org):
        agent = self.agent_in(world, org)
        suite = make_suite(agent, [("hi", [{"user": "hello", "expect": []}])], name=f"S {uuid.uuid4()}")
        operation = start_run(access=owner_access(org), agent=agent, suite=suite, version="draft")
        return operation.result["run"]


def test_api_starts_a_run_and_shows_its_results(world):
    agent = make_agent(world.acme, access=world.access("developer"))
    add_component(agent, "skill", "greeting", skill(["hello"], ["Hi there!"]))
    suite = make_suite(
        agent, [("hi", [{"user": "hello", "expect": [{"type": "contains", "value": "bye"}]}])], name="API"
    )
    client = world.client("developer")
    url = RUNS.format(org="acme", agent=agent.pk)
    no_version = client.post(url, {"suite": str(suite.pk), "version": 9}, format="json")
    assert "version" in assert_envelope(no_version, 400, "invalid")["error"]["fields"]
    foreign = client.post(url, {"suite": str(uuid.uuid4()), "version": "draft"}, format="json")
    assert "suite" in assert_envelope(foreign, 400, "invalid")["error"]["fields"]
    bad = client.post(url, {"suite": str(suite.pk), "version": "latest"}, format="json")
    assert "version" in assert_envelope(bad, 400, "invalid")["error"]["fields"]
    started = client.post(url, {"suite": str(suite.pk), "version": "draft"}, format="json")
    assert started.status_code == 202, started.content
    operation = started.json()["operation"]
    run_id = operation["result"]["run"]
    from lifecycle.operations import Operation

    run_operation_now(Operation.objects.for_org(world.acme).get(pk=operation["id"]))
    body = client.get(f"{url}{run_id}/").json()
    assert (body["status"], body["accuracy"], body["passed"], body["failed"], body["version"]) == (
        "succeeded",
        0.0,
        0,
        1,
        None,
    )
    assert body["cases"][0]["reasons"][0]["expected"] == "bye"
    listed = client.get(url, {"suite": str(suite.pk)}).json()["results"]
    assert [r["id"] for r in listed] == [run_id]
    assert_envelope(client.get(url, {"suite": "nope"}), 400, "invalid")


# --- the gate ----------------------------------------------------------------------------
def test_production_gate_of_95_percent_refuses_promotion_from_staging_until_the_suite_passes_there(world):
    dev = make_agent(world.acme)
    add_component(dev, "skill", "greeting", skill(["hello"], ["Hello from v1."]))
    version_save(access=owner_access(world.acme), agent=dev, changelog="greeting")
    staging = promote(promote(dev))
    assert staging.stage.slug == "staging"
    suite = make_suite(
        staging, [("greets", [{"user": "hello", "expect": [{"type": "contains", "value": "Welcome"}]}])]
    )
    set_policy(world, "production", {"gate": {"required_suites": [str(suite.pk)], "min_accuracy": 0.95}})
    client = world.client("owner")
    promote_url = f"/api/v1/orgs/acme/agents/{staging.pk}/promote/"
    payload = {"confirm": "accept", "changelog": "Ship it", "acknowledge_editors": True}

    def refused():
        body = assert_envelope(client.post(promote_url, payload, format="json"), 409, "gate_failed")
        return {c["name"]: (c["actual"], c["passed"]) for c in body["error"]["details"]["checks"]}

    # No run yet: no data, failing.
    assert refused() == {"required_suites": ("no data", False), "min_accuracy": ("no data", False)}
    run_operation_now(start_run(access=owner_access(world.acme), agent=fresh(staging), suite=suite))
    assert refused() == {"required_suites": ([str(suite.pk)], True), "min_accuracy": (0.0, False)}
    # A passing run of the working copy is no evidence: the gate reads the latest version.
    reply_with(staging, "Welcome! Hello from v2.")
    run_operation_now(
        start_run(access=owner_access(world.acme), agent=fresh(staging), suite=suite, version="draft")
    )
    assert refused()["min_accuracy"] == (0.0, False)
    version_save(access=owner_access(world.acme), agent=fresh(staging), changelog="welcome")
    assert refused()["min_accuracy"] == ("no data", False)  # v2 has not been run yet
    run_operation_now(start_run(access=owner_access(world.acme), agent=fresh(staging), suite=suite))
    preview = client.get(f"/api/v1/orgs/acme/agents/{staging.pk}/gate/", {"target": "production"}).json()
    assert preview["passed"] is True, preview
    promoted = client.post(promote_url, payload, format="json")
    assert promoted.status_code == 202, promoted.content


def test_a_run_cancelled_before_it_started_reads_as_cancelled(world):
    from lifecycle.operations import Operation, operation_cancel

    agent = make_agent(world.acme)
    suite = make_suite(agent, [("hi", [{"user": "hello", "expect": []}])])
    operation = start_run(access=owner_access(world.acme), agent=agent, suite=suite, version="draft")
    operation_cancel(actor=world.users["owner"], operation=operation)
    run_operation_now(Operation.objects.for_org(world.acme).get(pk=operation.pk))
    body = world.client("owner").get(RUNS.format(org="acme", agent=agent.pk) + f"{operation.result['run']}/")
    assert body.json()["status"] == "cancelled"
    assert not Conversation.objects.for_org(world.acme).filter(source="test_run").exists()


# --- the tab -----------------------------------------------------------------------------
def test_tab_runs_a_suite_and_shows_the_failing_expectation(world, django_capture_on_commit_callbacks):
    from tests.factories import signed_in

    agent = make_agent(world.acme, access=world.access("developer"))
    add_component(agent, "skill", "greeting", skill(["hello"], ["Hi there!"]))
    suite = make_suite(agent, [("hi", [{"user": "hello", "expect": [{"type": "contains", "value": "bye"}]}])])
    page = f"/orgs/acme/agents/{agent.pk}/test-runs/"
    developer_browser = signed_in(world.users["developer"])
    shown = developer_browser.get(page)
    assert (
        shown.status_code == 200
        and b'id="run-form"' in shown.content
        and b"Working copy (draft)" in shown.content
    )
    with django_capture_on_commit_callbacks(execute=True):
        started = developer_browser.post(page, {"suite": str(suite.pk), "version": "draft"})
    assert started.status_code == 302 and "/operations/" in started["Location"]
    run = TestRun.objects.for_org(world.acme).get(agent=agent)
    assert run.status == "succeeded"  # tasks run in-process in the fast tier
    detail = developer_browser.get(f"{page}{run.pk}/")
    assert b'class="case-failed"' in detail.content and b"failed-expectation" in detail.content
    assert b"bye" in detail.content
    bad = developer_browser.post(page, {"suite": "nope", "version": "draft"})
    assert bad.status_code == 200 and b"Choose a suite of this agent" in bad.content
    # A viewer reads the tab but has no form, and a POST is refused.
    viewer_browser = signed_in(world.users["viewer"])
    assert b'id="run-form"' not in viewer_browser.get(page).content
    assert viewer_browser.post(page, {"suite": str(suite.pk), "version": "draft"}).status_code == 403
    # Another org's agent is missing.
    other = make_agent(world.globex)
    assert developer_browser.get(f"/orgs/acme/agents/{other.pk}/test-runs/").status_code == 404
    assert developer_browser.get(f"{page}{uuid.uuid4()}/").status_code == 404


def test_a_gate_naming_another_lineages_suite_holds_an_agent_to_its_own_suites(world):
    """The stage's gate serves every lineage: Acme's required suite is not asked of another
    lineage (which could never run it), but that lineage still needs its own passing run."""
    access = owner_access(world.acme)
    first = make_agent(world.acme, "First")
    other = make_agent(world.acme, "Other")
    for agent in (first, other):
        add_component(agent, "skill", "greeting", skill(["hello"], ["Hello there."]))
        version_save(access=access, agent=agent, changelog="greeting")
    theirs = make_suite(
        first, [("greets", [{"user": "hello", "expect": [{"type": "contains", "value": "Hello"}]}])]
    )
    set_policy(world, "testing", {"gate": {"required_suites": [str(theirs.pk)], "min_accuracy": 0.95}})
    gate = f"/api/v1/orgs/acme/agents/{other.pk}/gate/"

    def checks():
        body = world.client("owner").get(gate, {"target": "testing"}).json()
        return {c["name"]: (c["actual"], c["passed"]) for c in body["checks"]}

    assert checks() == {"min_accuracy": ("no data", False)}
    own = make_suite(
        other, [("greets", [{"user": "hello", "expect": [{"type": "contains", "value": "Hello"}]}])]
    )
    run_operation_now(start_run(access=access, agent=fresh(other), suite=own))
    assert checks() == {"min_accuracy": (1.0, True)}
    # The lineage the suite belongs to is still asked for it.
    first_checks = (
        world.client("owner")
        .get(f"/api/v1/orgs/acme/agents/{first.pk}/gate/", {"target": "testing"})
        .json()["checks"]
    )
    assert {c["name"]: c["actual"] for c in first_checks} == {
        "required_suites": "no data",
        "min_accuracy": "no data",
    }
