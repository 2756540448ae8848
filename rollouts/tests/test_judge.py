"""The org's LLM judge: settings API (owners and admins, key write-only, URL checked,
audited without the key) and judge_score against a real OpenAI-compatible server."""

import json
import logging

import httpx
import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from accounts.demo import seed_demo_org
from agents.demo import seed_demo_agent
from agents.models import Agent
from agents.runtime.compile import CACHE
from lifecycle import crypto
from lifecycle.audit import AuditEvent
from rollouts.api.judge import JudgeSettingsView
from rollouts.evaluators import judge_case, judge_score
from rollouts.models import JudgeSettings, TestRun
from rollouts.services.judge import judge_settings_of
from rollouts.services.test_runs import test_run_start as start_run
from tests.api_mixin import OrgScopedEndpointTests, assert_envelope
from tests.factories import run_operation_now
from tests.http_servers import Recorder

from .test_test_runs import developer, make_suite

JUDGE = "/api/v1/orgs/{org}/evaluation/judge/"
KEY = "sk-judge-very-secret-1234"


def url(org="acme"):
    return JUDGE.format(org=org)


def body(base_url="http://127.0.0.1:9/v1", **extra):
    return {"base_url": base_url, "model": "judge-mini", **extra}


class TestJudgeSettingsTenancy(OrgScopedEndpointTests):
    views = (JudgeSettingsView,)
    list_url = JUDGE
    reader = "admin"
    listable = False
    forbidden = ("developer", "PUT", "list", body())


def test_defaults_to_no_judge(world):
    response = world.client("admin").get(url())
    assert response.status_code == 200
    assert response.json() == {
        "base_url": None,
        "model": None,
        "enabled": False,
        "is_set": False,
        "updated_at": None,
    }


def test_owner_sets_the_judge_the_key_is_write_only_encrypted_and_not_audited(world):
    client = world.client("owner")
    response = client.put(url(), body(key=KEY), format="json")
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["is_set"] is True and data["enabled"] is True and data["model"] == "judge-mini"
    assert KEY not in response.content.decode()
    assert KEY not in client.get(url()).content.decode()
    row = JudgeSettings.objects.for_org(world.acme).get()
    assert KEY not in row.key_encrypted and crypto.decrypt(row.key_encrypted) == KEY
    event = AuditEvent.objects.for_org(world.acme).get(action="evaluation.judge_updated")
    assert KEY not in json.dumps(event.changes, default=str)
    assert "key" in event.changes["changed"]


def test_omitting_the_key_keeps_it_and_an_empty_key_removes_it(world):
    client = world.client("admin")
    client.put(url(), body(key=KEY), format="json")
    kept = client.put(url(), body(model="judge-large"), format="json").json()
    assert kept["is_set"] is True and kept["model"] == "judge-large"
    assert crypto.decrypt(JudgeSettings.objects.for_org(world.acme).get().key_encrypted) == KEY
    assert client.put(url(), body(key=""), format="json").json()["is_set"] is False


def test_members_who_are_not_admins_may_not_read_or_write(world):
    for who in ("developer", "tester", "viewer"):
        assert_envelope(world.client(who).get(url()), 403, "forbidden")
        assert_envelope(world.client(who).put(url(), body(), format="json"), 403, "forbidden")
    assert not JudgeSettings.objects.for_org(world.acme).exists()


@pytest.mark.parametrize(
    "payload",
    [
        {"model": "m"},
        {"base_url": "not a url", "model": "m"},
        {"base_url": "ftp://example.com/v1", "model": "m"},
        {**body(), "enabled": "maybe"},
        {**body(), "key": ["a"]},
        {**body(), "modle": "typo"},
        {**body(), "model": "m\x00"},
    ],
)
def test_bad_input_is_400_and_writes_nothing(world, payload):
    assert_envelope(world.client("admin").put(url(), payload, format="json"), 400)
    assert not JudgeSettings.objects.for_org(world.acme).exists()


@override_settings(OUTBOUND_ALLOWED_HOSTS=[])
def test_a_private_endpoint_is_refused_by_the_outbound_rules(world):
    response = world.client("admin").put(url(), body("http://10.0.0.1/v1"), format="json")
    assert_envelope(response, 400, "outbound_refused")
    response = world.client("admin").put(url(), body("http://127.0.0.1:8000/v1"), format="json")
    assert_envelope(response, 400, "outbound_refused")
    assert not JudgeSettings.objects.for_org(world.acme).exists()


def test_stale_if_match_is_412(world):
    client = world.client("admin")
    client.put(url(), body(key=KEY), format="json")
    etag = client.get(url())["ETag"]
    stale = client.put(url(), body(model="other"), format="json", HTTP_IF_MATCH='"stale"')
    assert_envelope(stale, 412, "precondition_failed")
    assert client.put(url(), body(model="other"), format="json", HTTP_IF_MATCH=etag).status_code == 200


# --- judge_score against a real local server ------------------------------------------


def completion(content):
    return {"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]}


def configure(world, base_url, **extra):
    response = world.client("admin").put(url(), {**body(base_url), "key": KEY, **extra}, format="json")
    assert response.status_code == 200, response.content
    return judge_settings_of(world.acme)


def test_judge_score_asks_the_endpoint_and_returns_its_scores_with_the_model(world):
    reply = completion('Sure! ```json\n{"relevance": 0.9, "groundedness": 0.25}\n```')
    with Recorder(lambda r, req: (200, reply, 0)) as server:
        settings = configure(world, server.url + "/v1")
        scores = judge_score(settings, "Refund policy?", "30 days.", "Refunds within 30 days.")
    assert scores == {"relevance": 0.9, "groundedness": 0.25, "model": "judge-mini"}
    (request,) = server.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == f"Bearer {KEY}"
    assert request["body"]["model"] == "judge-mini" and request["body"]["temperature"] == 0
    prompt = request["body"]["messages"][-1]["content"]
    assert "Refund policy?" in prompt and "Refunds within 30 days." in prompt


@pytest.mark.parametrize(
    ("status", "reply"),
    [
        (200, completion("I think it is quite good.")),  # no JSON
        (200, completion('{"relevance": 1.5, "groundedness": 0.5}')),  # out of range
        (200, completion('{"relevance": "high", "groundedness": 0.5}')),
        (200, completion('{"relevance": true, "groundedness": 0.5}')),
        (200, {"choices": []}),
        (200, {"unexpected": "shape"}),
        (200, ["a", "list"]),
        (500, {"error": {"message": f"bad key {KEY}"}}),
        (401, {"error": "unauthorized"}),
    ],
)
def test_a_bad_answer_gives_no_score_never_an_error_and_logs_no_key(world, caplog, status, reply):
    with Recorder(lambda r, req: (status, reply, 0)) as server:
        settings = configure(world, server.url + "/v1")
        with caplog.at_level(logging.WARNING, logger="rollouts.evaluators.judge"):
            assert judge_score(settings, "q", "a", "") is None
    assert caplog.records, "a failure is logged"
    assert KEY not in caplog.text


def test_a_timeout_gives_no_score(world):
    with Recorder(lambda r, req: (200, completion('{"relevance": 1, "groundedness": 1}'), 1.5)) as server:
        settings = configure(world, server.url + "/v1")
        assert judge_score(settings, "q", "a", "", timeout=httpx.Timeout(0.3)) is None


def test_an_unreachable_endpoint_gives_no_score(world):
    with Recorder(lambda r, req: (200, {}, 0)) as server:
        base = server.url + "/v1"
    settings = configure(world, base)  # the server is gone: connection refused
    assert judge_score(settings, "q", "a", "") is None


def test_no_judge_or_a_disabled_one_gives_no_score_without_calling(world):
    assert judge_score(None, "q", "a", "") is None
    with Recorder(lambda r, req: (200, completion('{"relevance": 1, "groundedness": 1}'), 0)) as server:
        settings = configure(world, server.url + "/v1", enabled=False)
        assert judge_score(settings, "q", "a", "") is None
    assert server.requests == []


@override_settings(OUTBOUND_ALLOWED_HOSTS=[])
def test_a_judge_url_that_became_private_is_not_called(world):
    settings = JudgeSettings(org=world.acme, base_url="http://127.0.0.1:9/v1", model="m", enabled=True)
    assert judge_score(settings, "q", "a", "") is None


def test_judge_case_means_the_turns_scores_and_sends_each_turns_cited_knowledge(world):
    replies = iter(['{"relevance": 1, "groundedness": 0.5}', '{"relevance": 0.5, "groundedness": 0}'])
    with Recorder(lambda r, req: (200, completion(next(replies)), 0)) as server:
        settings = configure(world, server.url + "/v1")
        scores = judge_case(
            settings,
            [
                {"user": "Refund policy?", "answer": "30 days.", "sources": [{"uid": "k1"}]},
                {"user": "Thanks", "answer": "You're welcome.", "sources": []},
            ],
            {"k1": "Refunds within 30 days of purchase.", "k2": "Never sent."},
        )
    assert scores == {"relevance": 0.75, "groundedness": 0.25, "model": "judge-mini", "turns": 2}
    first, second = (req["body"]["messages"][-1]["content"] for req in server.requests)
    assert "Refunds within 30 days of purchase." in first and "Never sent." not in first
    assert "Context:\n(none)" in second


def test_judge_case_stops_at_the_first_failure(world):
    with Recorder(lambda r, req: (500, {"error": "down"}, 0)) as server:
        settings = configure(world, server.url + "/v1")
        turns = [{"user": f"q{i}", "answer": "a"} for i in range(5)]
        assert judge_case(settings, turns, {}) is None
    assert len(server.requests) == 1
    assert judge_case(None, turns, {}) is None


# --- a test run with the org's judge ------------------------------------------------------


@pytest.fixture
def acme_support(db):
    """The demo org's Acme Support (builtin engine: skills, knowledge, an order tool)."""
    CACHE.clear()
    org, _ = seed_demo_org()
    agent = seed_demo_agent(org) or Agent.objects.for_org(org).get(name="Acme Support")
    return Agent.objects.for_org(org).select_related("stage", "org").get(pk=agent.pk)


def test_a_test_run_stores_the_judges_scores_beside_the_deterministic_ones(acme_support):
    demo = acme_support
    suite = make_suite(
        demo,
        [
            ("order", [{"user": "Where is order #12345?", "expect": []}]),
            ("two turns", [{"user": "hello", "expect": []}, {"user": "where is my order", "expect": []}]),
        ],
    )
    replies = iter(
        completion(f'{{"relevance": {r}, "groundedness": {g}}}') for r, g in ((1, 1), (0.5, 0), (1, 0.5))
    )
    with Recorder(lambda r, req: (200, next(replies), 0)) as server:
        settings = JudgeSettings.objects.create(
            org=demo.org, base_url=server.url + "/v1", model="judge-mini", key_encrypted=crypto.encrypt(KEY)
        )
        operation = start_run(access=developer(demo.org), agent=demo, suite=suite)
        assert run_operation_now(operation).status == "succeeded"
    assert len(server.requests) == 3  # one per turn
    run = TestRun.objects.for_org(demo.org).get(pk=operation.result["run"])
    by_name = {c["name"]: c for c in run.cases}
    assert by_name["order"]["judge"] == {
        "relevance": 1.0,
        "groundedness": 1.0,
        "model": "judge-mini",
        "turns": 1,
    }
    assert by_name["two turns"]["judge"] == {
        "relevance": 0.75,
        "groundedness": 0.25,
        "model": "judge-mini",
        "turns": 2,
    }
    assert set(by_name["order"]["scores"]) == {
        "relevance",
        "groundedness",
        "intent_resolution",
        "tool_call_accuracy",
    }
    # The API shows it; the key appears nowhere in the run.
    client = APIClient()
    client.force_authenticate(developer(demo.org).user)
    body = client.get(f"/api/v1/orgs/{demo.org.slug}/agents/{demo.pk}/test-runs/{run.pk}/")
    assert body.status_code == 200, body.content
    assert {c["name"]: c["judge"]["model"] for c in body.json()["cases"]} == {
        "order": "judge-mini",
        "two turns": "judge-mini",
    }
    assert KEY not in body.content.decode()
    settings.delete()


def test_a_test_run_without_a_judge_stores_null(acme_support):
    demo = acme_support
    suite = make_suite(demo, [("order", [{"user": "Where is order #12345?", "expect": []}])])
    operation = start_run(access=developer(demo.org), agent=demo, suite=suite)
    assert run_operation_now(operation).status == "succeeded"
    run = TestRun.objects.for_org(demo.org).get(pk=operation.result["run"])
    assert run.cases[0]["judge"] is None


def test_the_judges_safety_view_is_stored_beside_the_detectors(acme_support):
    demo = acme_support
    suite = make_suite(
        demo,
        [
            ("order", [{"user": "Where is order #12345?", "expect": []}]),
            ("two turns", [{"user": "hello", "expect": []}, {"user": "where is my order", "expect": []}]),
        ],
    )
    replies = iter(
        completion(content)
        for content in (
            '{"relevance": 1, "groundedness": 1, "unsafe": ["violence", "not-a-category"]}',
            '{"relevance": 0.5, "groundedness": 0, "unsafe": []}',
            '{"relevance": 1, "groundedness": 0.5}',  # this judge left it out once
        )
    )
    with Recorder(lambda r, req: (200, next(replies), 0)) as server:
        settings = JudgeSettings.objects.create(org=demo.org, base_url=server.url + "/v1", model="judge-mini")
        operation = start_run(access=developer(demo.org), agent=demo, suite=suite)
        assert run_operation_now(operation).status == "succeeded"
    assert "unsafe" in server.requests[0]["body"]["messages"][0]["content"]
    run = TestRun.objects.for_org(demo.org).get(pk=operation.result["run"])
    judge = run.scores["judge"]
    assert (judge["model"], judge["turns"]) == ("judge-mini", 3)
    assert judge["relevance"] == pytest.approx(2.5 / 3, abs=1e-4)
    # Two turns named their unsafe categories (one of them none): violence in one of two.
    assert judge["safety"] == {"violence": 0.5, "sexual": 0.0, "self_harm": 0.0, "hate": 0.0}
    # The detectors' own rates are untouched by the judge's view.
    assert run.safety == {"violence": 0.0, "sexual": 0.0, "self_harm": 0.0, "hate": 0.0}
    settings.delete()
