"""A stage's spend per calendar month, its budget on conversation start, and its alert."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import TestCase
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Stage
from agents.models import Conversation
from agents.services.agents import agent_archive
from agents.services.conversations import conversation_start
from lifecycle.audit import AuditEvent
from monitoring.models import Alert
from rollouts.api.spend import StageSpendView
from rollouts.policy import stage_policy_update
from rollouts.spending import budget_state, month_bounds
from tests.api_mixin import OrgScopedEndpointTests, assert_envelope
from tests.factories import make_agent, owner_access, promote

from .test_gateway import live_setup, run_url

SPEND = "/api/v1/orgs/{org}/stages/{stage}/spend/"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def spent(agent, cost, source="live", when=None):
    """A conversation of `agent` in its stage that cost `cost`, started at `when`."""
    conversation = conversation_start(agent=agent, version=agent.version, draft=False, source=source)
    Conversation.objects.for_org(agent.org_id).filter(pk=conversation.pk).update(
        cost=Decimal(cost), started_at=when or timezone.now()
    )
    return conversation


def set_spending(world, stage: str, **spending):
    stage_obj = Stage.objects.for_org(world.acme).get(slug=stage)
    with TestCase.captureOnCommitCallbacks(execute=True):  # as on commit: the cached state goes
        return stage_policy_update(
            access=world.access("admin"), stage=stage_obj, document={"spending": spending}
        )


def stage(world, slug):
    return Stage.objects.for_org(world.acme).get(slug=slug)


class TestStageSpendTenancy(OrgScopedEndpointTests):
    views = (StageSpendView,)
    list_url = "/api/v1/orgs/{org}/stages/production/spend/"
    reader = "viewer"
    listable = False
    forbidden = ("member", "GET", "list", None)  # a member without a role in production


# --- the report -------------------------------------------------------------------------
def test_spend_sums_the_calendar_month_in_utc_by_agent_and_source(world):
    support = make_agent(world.acme, "Support")
    sales = make_agent(world.acme, "Sales")
    spent(support, "1.25", "live", at("2026-03-01T00:00:00Z"))  # the first instant is in March
    spent(support, "0.50", "console", at("2026-03-15T12:00:00Z"))
    spent(support, "0.004", "test_run", at("2026-03-31T23:59:59.999Z"))
    spent(sales, "2.00", "live", at("2026-03-10T08:00:00Z"))
    spent(support, "10.00", "live", at("2026-02-28T23:59:59.999Z"))  # February
    spent(support, "7.00", "live", at("2026-04-01T00:00:00Z"))  # April
    # Another stage's conversations and another org's are not this stage's spend.
    spent(promote(support), "100.00", "live", at("2026-03-05T00:00:00Z"))
    spent(make_agent(world.globex), "50.00", "live", at("2026-03-05T00:00:00Z"))
    agent_archive(access=owner_access(world.acme), agent=sales)  # its costs still count
    set_spending(world, "development", monthly_budget="10.00", alert_at=0.8, block=["live"])

    response = world.client("developer").get(
        SPEND.format(org="acme", stage="development"), {"month": "2026-03"}
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["month"], body["budget"], body["spent"], body["ratio"]) == (
        "2026-03",
        "10.00",
        "3.75",
        0.3754,
    )
    assert body["by_source"] == {"console": "0.50", "live": "3.25", "test_run": "0.00"}
    assert body["exhausted"] is False and body["block"] == ["live"] and body["alert_at"] == 0.8
    assert [
        (a["agent"]["name"], a["spent"], a["archived"], a["conversations"]) for a in body["by_agent"]
    ] == [
        ("Sales", "2.00", True, 1),
        ("Support", "1.75", False, 3),
    ]
    assert body["by_agent"][1]["by_source"] == {"live": "1.25", "console": "0.50", "test_run": "0.00"}
    assert body["by_agent"][0]["share"] == 0.5328

    february = world.client("developer").get(
        SPEND.format(org="acme", stage="development"), {"month": "2026-02"}
    )
    assert (february.json()["spent"], february.json()["ratio"]) == ("10.00", 1.0)
    assert february.json()["exhausted"] is True
    testing = (
        world.client("tester").get(SPEND.format(org="acme", stage="testing"), {"month": "2026-03"}).json()
    )
    assert (testing["spent"], testing["budget"], testing["ratio"]) == ("100.00", None, None)
    assert [a["agent"]["name"] for a in testing["by_agent"]] == ["Support"]


def test_the_default_month_is_the_current_one_in_utc(world):
    agent = make_agent(world.acme)
    spent(agent, "3.10")
    body = world.client("admin").get(SPEND.format(org="acme", stage="development")).json()
    assert body["month"] == timezone.now().astimezone(UTC).strftime("%Y-%m")
    assert body["spent"] == "3.10" and body["budget"] is None and body["ratio"] is None


def test_month_bounds_at_the_turn_of_the_year():
    assert month_bounds("2026-12")[1:] == (at("2026-12-01T00:00:00Z"), at("2027-01-01T00:00:00Z"))
    assert month_bounds(None, at("2026-12-31T23:30:00-02:00"))[0] == "2027-01"  # already January in UTC


@pytest.mark.parametrize(
    "month", ["13-2026", "2026-13", "2026-00", "2026-1", "2026/03", "", "0000-01", "2026-03\x00", "x" * 5000]
)
def test_a_bad_month_is_400(world, month):
    response = world.client("admin").get(SPEND.format(org="acme", stage="development"), {"month": month})
    body = assert_envelope(response, 400, "invalid")
    assert "month" in body["error"]["fields"]


def test_spend_needs_a_role_in_the_stage(world):
    assert world.client("developer").get(SPEND.format(org="acme", stage="development")).status_code == 200
    assert_envelope(world.client("developer").get(SPEND.format(org="acme", stage="production")), 403)
    assert_envelope(world.client("admin").get(SPEND.format(org="acme", stage="no-such-stage")), 404)


def test_the_report_costs_the_same_queries_for_one_agent_or_many(world):
    set_spending(world, "development", monthly_budget="5.00")
    url = SPEND.format(org="acme", stage="development")
    client = world.client("admin")
    spent(make_agent(world.acme), "1.00")
    client.get(url)  # warm the token and the membership paths alike
    with CaptureQueriesContext(connection) as one:
        assert client.get(url).status_code == 200
    for n in range(6):
        agent = make_agent(world.acme)
        for source in ("live", "console", "soak"):
            spent(agent, f"0.{n}1", source)
    with CaptureQueriesContext(connection) as many:
        body = client.get(url).json()
    assert len(body["by_agent"]) == 7
    assert len(many) == len(one), [q["sql"] for q in many]
    sums = [q["sql"] for q in many if "SUM(" in q["sql"].upper()]
    assert len(sums) == 1 and "started_at" in sums[0]


def test_the_spend_index_covers_the_report():
    from agents.models import Conversation

    indexes = {index.name: index.fields for index in Conversation._meta.indexes}
    assert indexes["conversation_spend"][:3] == ["org", "stage", "started_at"]
    assert {"agent", "source", "cost"} <= set(indexes["conversation_spend"])


# --- the budget at the gateway ----------------------------------------------------------
def test_a_spent_budget_refuses_new_live_conversations_with_402_and_open_ones_go_on(world):
    agent, client, _ = live_setup(world)
    lineage = agent.lineage.slug
    set_spending(world, "development", monthly_budget="2.00", alert_at=0.5, block=["live"])
    started = client.post(run_url("acme", lineage, "development"), {"user": "u1"}, format="json")
    assert started.status_code == 201, started.content
    cid = started.json()["conversation"]
    spent(agent, "2.00", "console")  # any source's cost counts against the budget
    cache.clear()  # the cached month-to-date sum has expired

    refused = client.post(run_url("acme", lineage, "development"), {"user": "u2"}, format="json")
    body = assert_envelope(refused, 402, "budget_exhausted")
    assert body["error"]["details"] == {
        "stage": "development",
        "month": month_bounds()[0],
        "budget": "2.00",
        "spent": "2.00",
        "source": "live",
    }
    assert "Development" in body["error"]["message"]
    count = Conversation.objects.for_org(world.acme).filter(source="live").count()
    assert count == 1, "nothing was written for the refused start"
    said = client.post(
        run_url("acme", lineage, "development", f"{cid}/messages/"), {"text": "hello"}, format="json"
    )
    assert said.status_code == 200, said.content

    # Raising the budget acts on the next start: the policy change clears the cached state.
    set_spending(world, "development", monthly_budget="20.00", alert_at=0.5, block=["live"])
    assert (
        client.post(run_url("acme", lineage, "development"), {"user": "u3"}, format="json").status_code == 201
    )


def test_only_the_listed_sources_are_blocked(world):
    agent, client, _ = live_setup(world)
    set_spending(world, "development", monthly_budget="1.00", block=["console"])
    spent(agent, "5.00")
    cache.clear()
    started = client.post(run_url("acme", agent.lineage.slug, "development"), {"user": "u"}, format="json")
    assert started.status_code == 201, started.content
    assert budget_state(stage(world, "development"))["spent"] == "5.000000"


def test_a_zero_budget_blocks_from_the_start_and_no_budget_never_does(world):
    agent, client, _ = live_setup(world)
    url = run_url("acme", agent.lineage.slug, "development")
    assert client.post(url, {"user": "u"}, format="json").status_code == 201
    set_spending(world, "development", monthly_budget="0.00", block=["live"])
    assert_envelope(client.post(url, {"user": "u"}, format="json"), 402, "budget_exhausted")
    set_spending(world, "development", monthly_budget=None, block=["live"])
    assert client.post(url, {"user": "u"}, format="json").status_code == 201


def test_starting_a_conversation_adds_no_query_once_the_budget_is_cached(world):
    agent, client, _ = live_setup(world)
    url = run_url("acme", agent.lineage.slug, "development")
    client.post(url, {"user": "warm"}, format="json")
    with CaptureQueriesContext(connection) as without_budget:
        assert client.post(url, {"user": "a"}, format="json").status_code == 201
    set_spending(world, "development", monthly_budget="100.00", block=["live"])
    client.post(url, {"user": "warm"}, format="json")
    with CaptureQueriesContext(connection) as with_budget:
        assert client.post(url, {"user": "b"}, format="json").status_code == 201
    assert len(with_budget) == len(without_budget), [q["sql"] for q in with_budget]
    # Messages never ask the budget at all.
    cid = client.post(url, {"user": "c"}, format="json").json()["conversation"]
    cache.clear()  # even with the month-to-date state gone, a message does not sum it again
    with CaptureQueriesContext(connection) as message:
        said = client.post(
            run_url("acme", agent.lineage.slug, "development", f"{cid}/messages/"),
            {"text": "hi"},
            format="json",
        )
    assert said.status_code == 200
    assert not any("SUM(" in q["sql"].upper() or "monitoring_alert" in q["sql"] for q in message)


# --- the alert ------------------------------------------------------------------------
def test_the_alert_opens_once_updates_and_resolves_once(world):
    agent = make_agent(world.acme)
    dev = stage(world, "development")
    set_spending(world, "development", monthly_budget="10.00", alert_at=0.8, block=["live"])
    spent(agent, "7.99")
    assert budget_state(dev, refresh=True)["spent"] == "7.990000"
    assert not Alert.objects.for_org(world.acme).exists()

    spent(agent, "0.01")  # exactly 80 %
    for _ in range(3):
        budget_state(dev, refresh=True)
    alert = Alert.objects.for_org(world.acme).get()
    assert (alert.metric, alert.level, alert.value, alert.threshold) == (
        "spend",
        "warning",
        Decimal("8"),
        Decimal("8"),
    )
    assert alert.details == {"month": month_bounds()[0], "budget": "10.00", "ratio": 0.8}

    spent(agent, "2.50")
    budget_state(dev, refresh=True)
    alert.refresh_from_db()
    assert (alert.level, alert.value, alert.threshold, alert.resolved_at) == (
        "critical",
        Decimal("10.5"),
        10,
        None,
    )
    assert Alert.objects.for_org(world.acme).count() == 1

    set_spending(world, "development", monthly_budget="100.00", alert_at=0.8, block=["live"])
    alert.refresh_from_db()
    assert alert.resolved_at is not None
    budget_state(dev, refresh=True)
    assert Alert.objects.for_org(world.acme).count() == 1
    actions = list(
        AuditEvent.objects.for_org(world.acme)
        .filter(action__startswith="alert.")
        .values_list("action", flat=True)
    )
    assert sorted(actions) == ["alert.opened", "alert.resolved"]


def test_an_alert_left_open_from_last_month_is_resolved_and_this_months_opens(world):
    agent = make_agent(world.acme)
    dev = stage(world, "development")
    set_spending(world, "development", monthly_budget="10.00", alert_at=0.5)
    spent(agent, "6.00")
    budget_state(dev, refresh=True)
    old = Alert.objects.for_org(world.acme).get()
    Alert.objects.for_org(world.acme).filter(pk=old.pk).update(details={**old.details, "month": "2000-01"})
    budget_state(dev, refresh=True)
    old.refresh_from_db()
    assert old.resolved_at is not None
    current = Alert.objects.for_org(world.acme).get(resolved_at__isnull=True)
    assert current.details["month"] == month_bounds()[0]


def test_the_alert_opens_on_a_gateway_start_without_flooding(world):
    agent, client, _ = live_setup(world)
    url = run_url("acme", agent.lineage.slug, "development")
    set_spending(world, "development", monthly_budget="1.00", alert_at=0.5, block=[])
    spent(agent, "0.75")
    for n in range(5):
        cache.clear()
        assert client.post(url, {"user": f"u{n}"}, format="json").status_code == 201
    assert Alert.objects.for_org(world.acme).filter(resolved_at__isnull=True).count() == 1
    assert AuditEvent.objects.for_org(world.acme).filter(action="alert.opened").count() == 1


def test_last_months_spend_does_not_count_against_this_months_budget(world):
    agent, client, _ = live_setup(world)
    url = run_url("acme", agent.lineage.slug, "development")
    set_spending(world, "development", monthly_budget="1.00", block=["live"])
    spent(agent, "1.00", when=timezone.now() - timedelta(days=40))
    cache.clear()
    assert client.post(url, {"user": "u"}, format="json").status_code == 201


# --- the budget in the console ----------------------------------------------------------
@pytest.mark.django_db(transaction=True)
async def test_the_console_gets_an_error_frame_when_console_traffic_is_blocked(world):
    import asyncio
    import json

    from accounts.services.auth import token_create
    from lifecycle.asgi import application
    from tests.ws import WebsocketCommunicator

    def setup():
        agent = make_agent(world.acme, "Console bot")
        set_spending(world, "development", monthly_budget="1.00", block=["console"])
        spent(agent, "1.00", "live")
        cache.clear()
        return agent, token_create(user=world.users["developer"], name="ws")[1]

    agent, key = await asyncio.to_thread(setup)
    url = f"/ws/orgs/acme/agents/{agent.pk}/conversation/?token={key}"
    socket = WebsocketCommunicator(application, url)
    assert (await socket.connect())[0]
    await socket.send_json_to({"type": "user_message", "text": "hello"})
    frame = json.loads(await socket.receive_from())
    assert (frame["type"], frame["code"]) == ("error", "budget_exhausted"), frame
    assert "Development" in frame["message"]
    count = await asyncio.to_thread(
        lambda: Conversation.objects.for_org(world.acme).filter(source="console").count()
    )
    assert count == 0
    # Raised budget: the same socket starts its conversation on the next message.
    await asyncio.to_thread(
        lambda: set_spending(world, "development", monthly_budget="50.00", block=["console"])
    )
    await socket.send_json_to({"type": "user_message", "text": "hello"})
    frame = json.loads(await socket.receive_from())
    assert frame["type"] == "conversation_initiation_metadata", frame
    await socket.disconnect()


# --- the beat's sweep -----------------------------------------------------------------------
def test_the_sweep_opens_the_alert_without_a_conversation_starting_and_resolves_it_next_month(world):
    from rollouts.spending import stages_to_watch
    from rollouts.tasks import spend_tick

    agent = make_agent(world.acme)
    set_spending(world, "development", monthly_budget="10.00", alert_at=0.5)
    set_spending(world, "testing", monthly_budget=None)  # a spending part without a budget
    globex_dev = Stage.objects.for_org(world.globex).get(slug="development")
    dev = stage(world, "development")
    assert stages_to_watch() == [(str(world.acme.pk), str(dev.pk))]
    spent(agent, "6.00")  # grown by messages: no start asked the budget since
    spend_tick()  # tasks run in-process in this tier
    alert = Alert.objects.for_org(world.acme).get(resolved_at__isnull=True)
    assert alert.level == "warning"
    # Another org's open alert is watched too, budget or not; its month is over.
    from monitoring.services import alert_open_or_update

    other, _ = alert_open_or_update(
        org=world.globex,
        stage=globex_dev,
        metric="spend",
        level="warning",
        value=Decimal("1"),
        threshold=Decimal("1"),
        details={"month": "2000-01"},
    )
    assert (str(world.globex.pk), str(globex_dev.pk)) in stages_to_watch()
    spend_tick()
    other.refresh_from_db()
    assert other.resolved_at is not None
    assert Alert.objects.for_org(world.acme).get(pk=alert.pk).resolved_at is None


# --- the budget on evaluation runs -------------------------------------------------------
def test_a_spent_budget_blocking_test_runs_and_soaks_refuses_them_with_nothing_written(world):
    from lifecycle.operations import Operation
    from rollouts.models import SoakTest, TestRun

    from .test_test_runs import make_suite

    agent = make_agent(world.acme, access=world.access("developer"))
    suite = make_suite(agent, [("hi", [{"user": "hello", "expect": []}])], name="Budget")
    runs = f"/api/v1/orgs/acme/agents/{agent.pk}/test-runs/"
    soaks = f"/api/v1/orgs/acme/agents/{agent.pk}/soak-tests/"
    client = world.client("developer")
    set_spending(world, "development", monthly_budget="1.00", block=["soak"])
    spent(agent, "1.00", "test_run")
    cache.clear()
    # test_run is not blocked: the run starts.
    assert client.post(runs, {"suite": str(suite.pk), "version": "draft"}, format="json").status_code == 202
    refused = client.post(soaks, {"executions": 3}, format="json")
    assert assert_envelope(refused, 402, "budget_exhausted")["error"]["details"]["source"] == "soak"
    assert SoakTest.objects.for_org(world.acme).count() == 0
    set_spending(world, "development", monthly_budget="1.00", block=["test_run"])
    before = (TestRun.objects.for_org(world.acme).count(), Operation.objects.for_org(world.acme).count())
    refused = client.post(runs, {"suite": str(suite.pk), "version": "draft"}, format="json")
    assert_envelope(refused, 402, "budget_exhausted")
    after = (TestRun.objects.for_org(world.acme).count(), Operation.objects.for_org(world.acme).count())
    assert after == before, "the refused run was rolled back with its operation"
