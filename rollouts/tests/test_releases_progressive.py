"""Progressive releases: canary, blue-green, manual; sticky routing; analysis verdicts."""

import random
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from agents.models import Conversation, ConversationSource
from agents.services.conversations import conversation_record, conversation_start
from agents.services.versions import version_save
from lifecycle.audit import AuditEvent
from lifecycle.operations import Operation
from rollouts.models import Release, ReleaseVerdict
from rollouts.services.release import release_create
from rollouts.services.release_analysis import release_analyze, releases_due
from rollouts.tests.test_releases import fresh, gateway_for, in_production, releases_url, reply_with, run_url
from rollouts.traffic import bucket, to_candidate
from tests.api_mixin import assert_envelope
from tests.factories import owner_access, run_operation_now
from webhooks.models import OutboxEvent as Event

FAST = {"interval": "5s", "min_samples": 50, "inconclusive_limit": 3, "min_ratings": 20}


def live_with_candidate(world):
    """Production agent: v1 live ("Hello from v1."), v2 saved ("Hello from v2.")."""
    _, prod = in_production(world.acme)
    release_create(access=owner_access(world.acme), agent=prod, version=1, changelog="Launch")
    reply_with(prod, "Hello from v2.")
    version_save(access=owner_access(world.acme), agent=fresh(prod), changelog="v2")
    return fresh(prod)


def start(world, agent, *, who="owner", **body):
    body = {"version": 2, "changelog": "Try v2", "strategy": "canary", **body}
    return world.client(who).post(releases_url(agent), body, format="json")


def canary(world, agent, steps=None, analysis=None) -> Release:
    made = start(
        world,
        agent,
        steps=steps or [{"weight": 5, "hold": "1s"}, {"weight": 25, "hold": "1s"}, {"weight": 100}],
        analysis=analysis or FAST,
    )
    assert made.status_code == 201, made.content
    return Release.objects.for_org(world.acme).select_related("agent").get(pk=made.json()["id"])


def act(world, release, name, who="owner", **body):
    return world.client(who).post(releases_url(release.agent, f"{release.pk}/{name}/"), body, format="json")


def reload(release) -> Release:
    return Release.objects.for_org(release.org_id).select_related("agent").get(pk=release.pk)


def traffic(agent, version, n, *, errors=0, latency=(80, 120), rating=None, text="Fine.", seed=1):
    """n live conversations on `version`, the first `errors` of them with an error."""
    rng = random.Random(seed)
    for i in range(n):
        conversation = conversation_start(
            agent=agent, version=version, draft=False, source=ConversationSource.LIVE, end_user=f"u{seed}-{i}"
        )
        turn = {"index": 1, "role": "agent", "text": text, "latency_total_ms": rng.randint(*latency)}
        if i < errors:
            turn["error"] = {"code": "tool_failed", "message": "500"}
        conversation_record(
            conversation=conversation, turns=[{"index": 0, "role": "user", "text": "hi"}, turn]
        )
        if rating is not None:
            Conversation.objects.for_org(agent.org_id).filter(pk=conversation.pk).update(rating=rating)


def tick(release, *, after=0.0):
    release = reload(release)
    at = max(release.next_analysis_at, release.step_started_at + timedelta(seconds=after))
    return release_analyze(org_id=release.org_id, release_id=release.pk, now=at)


# --- sticky routing ---------------------------------------------------------------------------
def test_stickiness_over_100k_keys_nests_exactly_through_5_25_50_100():
    release_id = "3f1c9a52-7d7e-4b8e-9a51-1b0f1e1f0a10"
    keys = [f"user-{i}" for i in range(100_000)]
    cohorts = {}
    for weight in (5, 25, 50, 100):
        cohorts[weight] = {k for k in keys if to_candidate(release_id, k, weight)}
        assert abs(len(cohorts[weight]) / len(keys) - weight / 100) <= 0.005, (weight, len(cohorts[weight]))
    assert cohorts[5] <= cohorts[25] <= cohorts[50] <= cohorts[100] == set(keys)
    # Another release draws other cohorts: nobody is the canary of every release.
    other = {k for k in keys if to_candidate("another-release", k, 5)}
    assert len(other & cohorts[5]) < len(cohorts[5]) * 0.2
    assert all(0 <= bucket(release_id, k) < 10_000 for k in keys[:1000])


def test_the_gateway_splits_new_conversations_by_the_sticky_hash_and_keeps_them(world):
    agent = live_with_candidate(world)
    release = canary(world, agent, steps=[{"weight": 25, "hold": "1h"}, {"weight": 100}])
    assert (release.status, release.weight, release.stable_version) == ("progressing", 25, 1)
    client = gateway_for(agent)
    on_candidate = 0
    for i in range(200):
        body = client.post(run_url(agent), {"user": f"user-{i}"}, format="json").json()
        expected = 2 if to_candidate(release.pk, f"user-{i}", 25) else 1
        assert body["version"] == expected
        on_candidate += expected == 2
    assert 25 < on_candidate < 75
    # The same user lands on the same version again; without a user, the conversation id is the key.
    lucky = next(f"user-{i}" for i in range(200) if to_candidate(release.pk, f"user-{i}", 25))
    assert client.post(run_url(agent), {"user": lucky}, format="json").json()["version"] == 2
    anonymous = client.post(run_url(agent), {}, format="json").json()
    assert anonymous["version"] == (2 if to_candidate(release.pk, anonymous["conversation"], 25) else 1)


def test_rollback_leaves_no_new_conversation_on_the_candidate_but_keeps_running_ones(world):
    agent = live_with_candidate(world)
    release = canary(world, agent, steps=[{"weight": 50, "hold": "1h"}, {"weight": 100}])
    client = gateway_for(agent)
    lucky = next(f"u{i}" for i in range(100) if to_candidate(release.pk, f"u{i}", 50))
    running = client.post(run_url(agent), {"user": lucky}, format="json").json()
    assert running["version"] == 2
    rolled = act(world, release, "rollback", reason="Customers complain")
    assert rolled.status_code == 200, rolled.content
    assert (rolled.json()["status"], rolled.json()["weight"]) == ("rolled_back", 0)
    versions = {
        client.post(run_url(agent), {"user": f"u{i}"}, format="json").json()["version"] for i in range(100)
    }
    assert versions == {1}
    # The conversation under way keeps its version to its end.
    said = client.post(
        run_url(agent, f"{running['conversation']}/messages/"), {"text": "hello"}, format="json"
    )
    assert said.json()["events"][-1]["text"] == "Hello from v2."
    assert fresh(agent).live_version == 1
    assert Event.objects.for_org(world.acme).filter(event="release.rolled_back").exists()
    # A rollback is not repeated: the release has ended.
    assert_envelope(act(world, release, "rollback"), 409, "conflict")


def test_a_safety_rollback_moves_running_conversations_to_stable_on_their_next_message(world):
    agent = live_with_candidate(world)
    release = canary(world, agent, steps=[{"weight": 50, "hold": "1h"}, {"weight": 100}])
    client = gateway_for(agent)
    lucky = next(f"u{i}" for i in range(100) if to_candidate(release.pk, f"u{i}", 50))
    running = client.post(run_url(agent), {"user": lucky}, format="json").json()
    assert act(world, release, "rollback", reason="It leaked", safety=True).json()["safety_rollback"] is True
    said = client.post(
        run_url(agent, f"{running['conversation']}/messages/"), {"text": "hello"}, format="json"
    )
    assert said.json()["events"][-1]["text"] == "Hello from v1."


def test_starting_a_conversation_during_a_canary_costs_no_more_queries_than_without(world):
    agent = live_with_candidate(world)
    client = gateway_for(agent)

    def queries(user) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.post(run_url(agent), {"user": user}, format="json").status_code == 201
        return len(captured)

    queries("warm-up")
    without = queries("a")
    release = canary(world, agent, steps=[{"weight": 50, "hold": "1h"}, {"weight": 100}])
    # The first start after a change reloads the split, and each version compiles once.
    users = [f"user-{i}" for i in range(40)]
    for arm in (True, False):
        queries(next(u for u in users if to_candidate(release.pk, u, 50) is arm))
    # Three new conversations on each version (40 users hold enough of both).
    picked = [u for u in users if to_candidate(release.pk, u, 50)][1:4]
    picked += [u for u in users if not to_candidate(release.pk, u, 50)][1:4]
    assert len(picked) == 6
    during = [queries(u) for u in picked]
    assert max(during) == without, (during, without)


# --- creating ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "path"),
    [
        (
            {"steps": [{"weight": 5, "hold": "1h"}, {"weight": 3, "hold": "1h"}, {"weight": 100}]},
            "steps[1].weight",
        ),
        ({"steps": [{"weight": 5, "hold": "1h"}, {"weight": 50}]}, "steps[1].weight"),
        ({"steps": [{"weight": 5}, {"weight": 100}]}, "steps[0].hold"),
        ({"steps": [{"weight": 5, "hold": "0s"}, {"weight": 100}]}, "steps[0].hold"),
        ({"steps": [{"weight": 5, "hold": "soon"}, {"weight": 100}]}, "steps[0].hold"),
        ({"steps": [{"weight": 101}]}, "steps[0].weight"),
        ({"steps": [{"weight": 100, "hold": "1h"}]}, "steps[0].hold"),
        ({"steps": []}, "steps"),
        ({"steps": "5,25,100"}, "steps"),
        ({"analysis": {"interval": "4s"}}, "analysis.interval"),
        ({"analysis": {"min_samples": 0}}, "analysis.min_samples"),
        ({"analysis": {"max_error_rate_increase": 2}}, "analysis.max_error_rate_increase"),
        ({"analysis": {"inconclusive_limit": True}}, "analysis.inconclusive_limit"),
        ({"analysis": {"colour": 1}}, "analysis.colour"),
        ({"keep_warm": "forever"}, "keep_warm"),
        ({"smoke": {"turns": []}}, "smoke"),
        ({"strategy": "blue_green", "smoke": {"suite": "nope"}}, "smoke.suite"),
        ({"strategy": "blue_green", "smoke": {"turns": [{"usr": "hi"}]}}, "smoke.turns.0.usr"),
        ({"version": 1}, "version"),
    ],
)
def test_bad_release_bodies_are_400_with_the_path_of_the_bad_value(world, body, path):
    agent = live_with_candidate(world)
    error = assert_envelope(start(world, agent, **body), 400, "invalid")["error"]
    assert path in error["fields"], error
    assert (
        not Release.objects.for_org(world.acme)
        .filter(agent=agent, strategy__in=["canary", "blue_green"])
        .exists()
    )


def test_defaults_follow_the_api_and_one_release_at_a_time(world):
    agent = live_with_candidate(world)
    made = start(world, agent)
    body = made.json()
    assert made.status_code == 201, made.content
    assert body["steps"] == [{"weight": 5, "hold": "1h"}, {"weight": 25, "hold": "2h"}, {"weight": 100}]
    assert body["thresholds"]["interval"] == "5m" and body["thresholds"]["min_samples"] == 50
    assert (body["status"], body["weight"], body["keep_warm"]) == ("progressing", 5, "24h")
    assert_envelope(start(world, agent), 409, "conflict")
    assert_envelope(start(world, agent, strategy="direct"), 409, "conflict")
    assert world.client("owner").get(releases_url(agent, f"{body['id']}/")).json()["analysis"] == []
    started = Event.objects.for_org(world.acme).filter(event="release.started").latest("created_at")
    assert started.data["release"] == body["id"] and started.data["weight"] == 0


# --- transitions ------------------------------------------------------------------------------
def test_pause_resume_advance_and_wrong_states(world):
    agent = live_with_candidate(world)
    release = canary(world, agent)
    assert_envelope(act(world, release, "pause", who="viewer"), 403, "forbidden")
    assert_envelope(act(world, release, "resume"), 409, "conflict")
    paused = act(world, release, "pause", reason="A/B for a day").json()
    assert (paused["status"], paused["weight"], paused["next_analysis_at"]) == ("paused", 5, None)
    assert releases_due(reload(release).step_started_at + timedelta(days=1)) == []
    assert_envelope(act(world, release, "pause"), 409, "conflict")
    assert act(world, release, "advance", reason="looks good").json()["weight"] == 25
    assert act(world, release, "resume").json()["status"] == "progressing"
    done = act(world, release, "advance").json()
    assert (done["status"], done["weight"]) == ("succeeded", 100)
    assert fresh(agent).live_version == 2
    assert_envelope(act(world, release, "advance"), 409, "conflict")
    actions = set(
        AuditEvent.objects.for_org(world.acme)
        .filter(target_id=str(agent.pk))
        .values_list("action", flat=True)
    )
    assert {"release.paused", "release.resumed", "release.advanced", "release.succeeded"} <= actions
    events = set(Event.objects.for_org(world.acme).values_list("event", flat=True))
    assert {
        "release.started",
        "release.paused",
        "release.resumed",
        "release.advanced",
        "release.succeeded",
    } <= events
    assert_envelope(act(world, release, "advance", reason=["x"]), 400, "invalid")


def test_a_succeeded_release_is_undone_by_one_rollback_while_warm(world):
    agent = live_with_candidate(world)
    release = canary(world, agent, steps=[{"weight": 100}])
    assert reload(release).status == "succeeded" and fresh(agent).live_version == 2
    undone = act(world, release, "rollback", reason="v2 is wrong").json()
    assert undone["status"] == "rolled_back" and fresh(agent).live_version == 1
    client = gateway_for(agent)
    assert client.post(run_url(agent), {"user": "x"}, format="json").json()["version"] == 1
    # Past keep_warm, going back takes a new release.
    again = canary(world, fresh(agent), steps=[{"weight": 100}])
    Release.objects.for_org(world.acme).filter(pk=again.pk).update(warm_until=again.created_at)
    assert "no longer kept warm" in assert_envelope(act(world, again, "rollback"), 409)["error"]["message"]


def test_manual_release_waits_for_the_stages_change_approval_then_takes_all_traffic(
    world, django_capture_on_commit_callbacks
):
    agent = live_with_candidate(world)
    # Production's policy asks for no approval; a manual release asks for one anyway.
    made = start(world, agent, strategy="manual")
    assert made.status_code == 202, made.content
    operation = made.json()["operation"]
    assert operation["status"] == "awaiting_approval"
    approval = operation["result"]["approval"]
    assert not Release.objects.for_org(world.acme).filter(agent=agent, strategy="manual").exists()
    assert gateway_for(agent).post(run_url(agent), {"user": "a"}, format="json").json()["version"] == 1
    # The requester may not approve their own release.
    url = f"/api/v1/orgs/acme/approvals/{approval}/approve/"
    assert world.client("owner").post(url, {"comment": "me"}, format="json").status_code == 403
    with django_capture_on_commit_callbacks(execute=True):
        decided = world.client("admin").post(url, {"comment": "Reviewed the changelog"}, format="json")
    assert decided.status_code == 200, decided.content
    release = Release.objects.for_org(world.acme).get(agent=agent, strategy="manual")
    assert (release.status, release.weight, release.stable_version) == ("succeeded", 100, 1)
    assert fresh(agent).live_version == 2
    assert release.warm_until is not None


def test_a_failed_blue_green_smoke_test_never_switches(world):
    agent = live_with_candidate(world)
    made = start(
        world,
        agent,
        strategy="blue_green",
        smoke={"turns": [{"user": "hello", "expect": [{"type": "contains", "value": "v3"}]}]},
    )
    assert made.status_code == 201, made.content
    assert made.json()["status"] == "smoke_testing"
    release = smoke_tested(world, made.json()["id"])
    assert release.status == "aborted" and "Smoke test failed" in release.reason
    assert release.config["smoke"]["result"]["passed"] is False
    assert fresh(agent).live_version == 1
    assert not Conversation.objects.for_org(world.acme).filter(version=2, source="live").exists()
    assert Conversation.objects.for_org(world.acme).filter(version=2, source="test_run").exists()


def test_a_passing_blue_green_smoke_test_starts_at_the_first_step(world):
    agent = live_with_candidate(world)
    made = start(
        world,
        agent,
        strategy="blue_green",
        smoke={"turns": [{"user": "hello", "expect": [{"type": "contains", "value": "v2"}]}]},
    )
    release = smoke_tested(world, made.json()["id"])
    assert (release.status, release.weight, release.steps[0]["weight"]) == ("progressing", 10, 10)
    assert release.config["keep_warm"] == "24h" and release.operation_id is not None


def smoke_tested(world, release_id) -> Release:
    """The smoke operation, run as the worker would once the request commits."""
    release = Release.objects.for_org(world.acme).get(pk=release_id)
    assert (
        run_operation_now(Operation.objects.for_org(world.acme).get(pk=release.operation_id)).status
        == "succeeded"
    )
    return reload(release)


# --- analysis ---------------------------------------------------------------------------------
def test_pass_advances_once_the_hold_has_elapsed(world):
    agent = live_with_candidate(world)
    release = canary(world, agent, steps=[{"weight": 5, "hold": "1h"}, {"weight": 100}])
    traffic(agent, 1, 60, seed=1)
    traffic(agent, 2, 60, seed=2)
    held = tick(release)
    assert (held.verdict, held.action) == ("pass", "")
    assert held.metrics["error_rate"]["test"].startswith("two-proportion z-test")
    assert held.metrics["error_rate"]["p_value_within"] < 0.05
    assert held.metrics["latency_p95"]["p_value"] is not None
    assert reload(release).weight == 5  # the hold has not elapsed
    advanced = tick(release, after=3600)
    assert (advanced.verdict, advanced.action) == ("pass", "advanced")
    assert reload(release).status == "succeeded" and fresh(agent).live_version == 2
    shown = world.client("owner").get(releases_url(agent, f"{release.pk}/")).json()["analysis"]
    assert [v["verdict"] for v in shown] == ["pass", "pass"] and shown[1]["action"] == "advanced"


def test_fail_rolls_back_automatically_and_tells_webhooks(world):
    agent = live_with_candidate(world)
    release = canary(world, agent)
    traffic(agent, 1, 60, seed=1)
    traffic(agent, 2, 60, errors=30, seed=2)
    verdict = tick(release)
    assert (verdict.verdict, verdict.action) == ("fail", "rolled_back")
    assert (
        verdict.metrics["error_rate"]["result"] == "fail" and verdict.metrics["error_rate"]["p_value"] < 0.05
    )
    release = reload(release)
    assert (release.status, release.weight, release.safety_rollback) == ("rolled_back", 0, False)
    event = Event.objects.for_org(world.acme).filter(event="release.rolled_back").get()
    assert event.data["automatic"] is True and "error_rate" in event.data["reason"]
    from monitoring.models import Alert

    alert = Alert.objects.for_org(world.acme).get(metric="release_rollback", agent=agent)
    assert alert.level == "critical" and alert.version == 2 and alert.is_open
    assert Event.objects.for_org(world.acme).filter(event="alert.opened").exists()
    # The next release that succeeds resolves it.
    canary(world, fresh(agent), steps=[{"weight": 100}])
    alert.refresh_from_db()
    assert not alert.is_open


def test_a_safety_violation_fails_at_once(world):
    agent = live_with_candidate(world)
    release = canary(world, agent)
    traffic(agent, 2, 3, text="The key is •••••• as you asked.", seed=2)
    verdict = tick(release)
    assert verdict.verdict == "fail" and verdict.metrics["safety"]["candidate"] == 3
    assert reload(release).safety_rollback is True


def test_inconclusive_holds_then_pauses_for_a_person(world):
    agent = live_with_candidate(world)
    release = canary(world, agent)
    traffic(agent, 1, 60, seed=1)
    traffic(agent, 2, 60, errors=3, seed=2)
    first = tick(release)
    assert (first.verdict, first.action) == ("inconclusive", "")
    assert "error_rate" in first.reason
    tick(release)
    third = tick(release)
    assert (third.verdict, third.action) == ("inconclusive", "paused")
    assert reload(release).status == "paused" and reload(release).weight == 5


def test_empty_data_is_never_a_pass(world):
    agent = live_with_candidate(world)
    release = canary(world, agent, analysis={**FAST, "inconclusive_limit": 10})
    verdict = tick(release, after=3600)
    assert verdict.verdict == "inconclusive" and "Not enough data" in verdict.reason
    traffic(agent, 1, 60, seed=1)
    traffic(agent, 2, 10, seed=2)
    assert tick(release, after=3600).verdict == "inconclusive"
    assert reload(release).weight == 5


def test_measurement_errors_are_never_a_pass_and_four_in_a_row_fail(world):
    agent = live_with_candidate(world)
    release = canary(world, agent)
    traffic(agent, 1, 60, seed=1)
    traffic(agent, 2, 60, seed=2)
    # A stored rating outside 1-5 is data that cannot be measured.
    Conversation.objects.for_org(world.acme).filter(version=2).update(rating=9)
    verdicts = [tick(release, after=3600) for _ in range(4)]
    assert [v.verdict for v in verdicts] == ["error", "error", "error", "fail"]
    assert "Measurement error" in verdicts[0].reason and "4 measurement errors" in verdicts[3].reason
    assert reload(release).status == "rolled_back"


def test_the_beat_sweep_analyses_due_releases_only(world):
    from rollouts.tasks import releases_tick

    agent = live_with_candidate(world)
    release = canary(world, agent)
    assert releases_due() == []  # due in 5 s
    Release.objects.for_org(world.acme).filter(pk=release.pk).update(
        next_analysis_at=reload(release).next_analysis_at - timedelta(seconds=10)
    )
    assert releases_due() == [(str(world.acme.pk), str(release.pk))]
    releases_tick.delay()  # in-process here; a real worker and beat in the services tier
    assert ReleaseVerdict.objects.for_org(world.acme).filter(release=release).count() == 1
    assert releases_due() == []


# --- pages --------------------------------------------------------------------------------------
def test_start_a_canary_from_the_releases_tab_watch_it_and_roll_it_back(world):
    from tests.factories import signed_in

    agent = live_with_candidate(world)
    owner = signed_in(world.users["owner"])
    tab = owner.get(f"/orgs/acme/agents/{agent.pk}/releases/").content.decode()
    assert 'name="strategy"' in tab and 'value="5:1h 25:2h 100"' in tab and 'value="5m"' in tab
    form = {"version": "2", "changelog": "Canary of v2", "strategy": "canary", "steps": "5:1h 25:2h 100"}
    form |= {"analysis_interval": "5m", "analysis_min_samples": "50", "keep_warm": "24h"}
    refused = owner.post(f"/orgs/acme/agents/{agent.pk}/releases/", {**form, "steps": "5:1h 25:zz 100"})
    assert refused.status_code == 200 and "steps[1].hold" in refused.content.decode()
    made = owner.post(f"/orgs/acme/agents/{agent.pk}/releases/", form)
    assert made.status_code == 302, made.content[:500]
    release = Release.objects.for_org(world.acme).get(agent=agent, strategy="canary")
    assert made["Location"].endswith(f"/releases/{release.pk}/")
    traffic(agent, 1, 60, seed=1)
    traffic(agent, 2, 60, seed=2)
    tick(release)
    page = owner.get(made["Location"]).content.decode()
    assert 'data-release-weight="5"' in page and 'data-verdict="pass"' in page and "hold 1h" in page
    assert 'release-rollback" hx-confirm="Roll back now?' in page and "Mann-Whitney" in page
    viewer_page = signed_in(world.users["viewer"]).get(made["Location"]).content.decode()
    assert "Roll back" not in viewer_page
    rolled = owner.post(made["Location"], {"action": "rollback", "reason": "Not today"})
    assert rolled.status_code == 302 and reload(release).status == "rolled_back"
    again = owner.post(made["Location"], {"action": "pause"})
    assert again.status_code == 409 and "Only a progressing release" in again.content.decode()
    assert signed_in(world.users["outsider"]).get(made["Location"]).status_code == 404
