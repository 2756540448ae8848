"""Stage API keys and the gateway: live conversations authenticated by a stage's key."""

import asyncio

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from accounts.models import Stage
from agents.demo import COMPONENTS, SETTINGS
from agents.models import Conversation, Turn
from agents.runtime.compile import CACHE
from agents.services.components import component_create
from agents.services.versions import version_save
from rollouts.api.views import StageKeyViewSet
from rollouts.models import StageKey
from rollouts.services.keys import stage_key_create
from tests.api_mixin import OrgScopedEndpointTests, assert_envelope
from tests.factories import make_agent, make_world, owner_access, promote

KEYS = "/api/v1/orgs/{org}/stages/{stage}/keys/"


class TestStageKeysTenancy(OrgScopedEndpointTests):
    views = (StageKeyViewSet,)
    list_url = KEYS
    detail_url = KEYS + "{id}/"
    reader = "admin"
    forbidden = ("member", "POST", "list", {"name": "ci"})
    etag_write = ("admin", "DELETE", None)
    create_payload = {"name": "Website widget"}

    def path_kwargs(self, world, org):
        return {"stage": "production"}

    def make_object(self, world, org):
        stage = Stage.objects.for_org(org).get(slug="production")
        return str(stage_key_create(access=owner_access(org), stage=stage, name="k")[0].pk)

    def test_foreign_parent_under_own_org_is_404(self, world):
        response = world.client(self.reader).get(KEYS.format(org="acme", stage="no-such-stage"))
        assert_envelope(response, 404, "not_found")


def run_url(org, lineage, stage, tail=""):
    return f"/api/v1/run/{org}/{lineage}/{stage}/conversations/{tail}"


def live_setup(world, stage="development"):
    CACHE.clear()
    access = owner_access(world.acme)
    agent = make_agent(world.acme, "Live support", settings=SETTINGS)
    for kind, name, spec in COMPONENTS:
        component_create(access=access, agent=agent, kind=kind, name=name, spec=spec)
    version_save(access=access, agent=agent, changelog="ready")
    stage_obj = Stage.objects.for_org(world.acme).get(slug=stage)
    _, raw = stage_key_create(access=access, stage=stage_obj, name="widget")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return agent, client, raw


def test_keys_are_shown_once_and_stored_hashed(world):
    created = world.client("admin").post(
        KEYS.format(org="acme", stage="production"), {"name": "site"}, format="json"
    )
    assert created.status_code == 201
    raw = created.json()["key"]
    assert raw.startswith("lcs_") and created.json()["stage"] == "production"
    listed = world.client("admin").get(KEYS.format(org="acme", stage="production")).json()["results"]
    assert raw not in str(listed)
    assert StageKey.objects.for_org(world.acme).get().key_hash != raw
    assert_envelope(world.client("viewer").get(KEYS.format(org="acme", stage="production")), 403)


def test_a_live_conversation_through_the_gateway(world):
    agent, client, _ = live_setup(world)
    lineage = agent.lineage.slug
    started = client.post(
        run_url("acme", lineage, "development"),
        {"user": "customer-42", "variables": {"name": "Ada"}},
        format="json",
    )
    assert started.status_code == 201, started.content
    body = started.json()
    assert body["version"] == 2 and body["first_message"].startswith("Hi! I'm Acme's")
    cid = body["conversation"]
    said = client.post(
        run_url("acme", lineage, "development", f"{cid}/messages/"),
        {"text": "Where is order 4242?"},
        format="json",
    )
    assert said.status_code == 200, said.content
    events = said.json()["events"]
    kinds = [e["type"] for e in events]
    assert kinds[0] == "tool_call" and kinds[-1] == "agent_response"
    assert events[-1]["text"] == "Order 4242 has shipped and should arrive in 2 days with ParcelCo."
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    # A slot asked for in one request is filled by the next: state survives between requests.
    asked = client.post(
        run_url("acme", lineage, "development", f"{cid}/messages/"),
        {"text": "where is my order"},
        format="json",
    )
    assert asked.json()["events"][-1]["text"] == "What is your order number?"
    filled = client.post(
        run_url("acme", lineage, "development", f"{cid}/messages/"), {"text": "777"}, format="json"
    )
    assert filled.json()["events"][-1]["text"].startswith("Order 777 has shipped")
    rated = client.post(
        run_url("acme", lineage, "development", f"{cid}/rating/"), {"rating": 5}, format="json"
    )
    assert rated.status_code == 200
    conversation = Conversation.objects.for_org(world.acme).get(pk=cid)
    assert (conversation.source, conversation.version, conversation.draft, conversation.rating) == (
        "live",
        2,
        False,
        5,
    )
    assert conversation.end_user == "customer-42" and conversation.turn_count == 7
    assert (
        Turn.objects.for_org(world.acme)
        .filter(conversation=conversation, role="agent")
        .exclude(latency_total_ms=None)
        .count()
        == 4
    )


def test_live_traffic_is_served_by_the_latest_saved_version(world):
    agent, client, _ = live_setup(world)
    from agents.models import Component
    from agents.services.components import component_update

    greeting = Component.objects.for_org(world.acme).get(agent=agent, name="greeting")
    component_update(
        access=owner_access(world.acme),
        component=greeting,
        spec={"utterances": ["hello"], "responses": ["Unsaved hello!"]},
    )
    cid = client.post(run_url("acme", agent.lineage.slug, "development"), {}, format="json").json()[
        "conversation"
    ]
    said = client.post(
        run_url("acme", agent.lineage.slug, "development", f"{cid}/messages/"),
        {"text": "hello"},
        format="json",
    )
    assert said.json()["events"][-1]["text"] == "Hello! How can I help you today?"


@pytest.mark.django_db(transaction=True)
def test_server_sent_events():
    world = make_world()
    agent, client, _ = live_setup(world)
    cid = client.post(run_url("acme", agent.lineage.slug, "development"), {}, format="json").json()[
        "conversation"
    ]
    response = client.post(
        run_url("acme", agent.lineage.slug, "development", f"{cid}/messages/"),
        {"text": "hello"},
        format="json",
        HTTP_ACCEPT="text/event-stream",
    )
    assert response.status_code == 200 and response["Content-Type"].startswith("text/event-stream")

    async def consume():  # under ASGI the server does this; the stream saves the turns at its end
        return [chunk async for chunk in response.streaming_content]

    body = b"".join(asyncio.run(consume())).decode()
    blocks = [b for b in body.split("\n\n") if b.strip()]
    assert blocks[0].startswith("event: agent_response_delta\ndata: ")
    assert "event: agent_response\n" in body and blocks[-1] == "event: done\ndata: {}"
    assert Turn.objects.for_org(world.acme).filter(conversation_id=cid).count() == 3


def test_keys_are_for_one_stage_and_one_org(world):
    agent, client, _raw = live_setup(world)
    lineage = agent.lineage.slug
    assert_envelope(
        client.post(run_url("acme", lineage, "testing"), {}, format="json"), 401, "unauthenticated"
    )
    assert_envelope(client.post(run_url("globex", lineage, "development"), {}, format="json"), 401)
    assert_envelope(APIClient().post(run_url("acme", lineage, "development"), {}, format="json"), 401)
    bad = APIClient()
    bad.credentials(HTTP_AUTHORIZATION="Bearer lcs_nope")
    assert_envelope(bad.post(run_url("acme", lineage, "development"), {}, format="json"), 401)
    session = world.client("owner")  # a member's token is not a stage key
    assert_envelope(session.post(run_url("acme", lineage, "development"), {}, format="json"), 401)
    StageKey.objects.for_org(world.acme).update(revoked_at=agent.created_at)
    assert_envelope(client.post(run_url("acme", lineage, "development"), {}, format="json"), 401)


def test_missing_things_are_404_and_bad_input_400(world):
    agent, client, _ = live_setup(world)
    lineage = agent.lineage.slug
    assert_envelope(client.post(run_url("acme", "no-such-lineage", "development"), {}, format="json"), 404)
    other = make_agent(world.acme, "Other")
    foreign = Conversation.objects.create(
        org=world.acme, agent=other, stage=other.stage, version=1, source="live"
    )
    assert_envelope(
        client.post(
            run_url("acme", lineage, "development", f"{foreign.pk}/messages/"), {"text": "hi"}, format="json"
        ),
        404,
    )
    cid = client.post(run_url("acme", lineage, "development"), {}, format="json").json()["conversation"]
    for body in ({}, {"text": ""}, {"text": "x" * 20000}, {"text": "hi\x00"}, {"text": "hi", "txet": "typo"}):
        assert_envelope(
            client.post(run_url("acme", lineage, "development", f"{cid}/messages/"), body, format="json"), 400
        )
    assert_envelope(
        client.post(run_url("acme", lineage, "development", f"{cid}/rating/"), {"rating": 6}, format="json"),
        400,
    )
    assert_envelope(
        client.post(run_url("acme", lineage, "development"), {"variables": {"a": {"b": 1}}}, format="json"),
        400,
    )


def test_per_key_rate_limit(world, settings):
    settings.GATEWAY_RATE_PER_MINUTE = 3
    cache.clear()
    agent, client, _ = live_setup(world)
    codes = [
        client.post(run_url("acme", agent.lineage.slug, "development"), {}, format="json").status_code
        for _ in range(4)
    ]
    assert codes == [201, 201, 201, 429]
    throttled = client.post(run_url("acme", agent.lineage.slug, "development"), {}, format="json")
    assert_envelope(throttled, 429, "throttled") and int(throttled["Retry-After"]) > 0


def test_a_promoted_agent_serves_its_stage(world):
    agent, _, _ = live_setup(world)
    testing = promote(agent)
    stage = Stage.objects.for_org(world.acme).get(slug="testing")
    _, raw = stage_key_create(access=owner_access(world.acme), stage=stage, name="qa")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    started = client.post(run_url("acme", testing.lineage.slug, "testing"), {}, format="json")
    assert started.status_code == 201 and started.json()["version"] == 1
    assert (
        Conversation.objects.for_org(world.acme).get(pk=started.json()["conversation"]).agent_id == testing.pk
    )


def test_turns_are_numbered_on_and_a_concurrent_message_is_409_with_nothing_written(world):
    agent, client, _ = live_setup(world)
    lineage = agent.lineage.slug
    cid = client.post(run_url("acme", lineage, "development"), {}, format="json").json()["conversation"]
    messages = run_url("acme", lineage, "development", f"{cid}/messages/")
    for text in ("hello", "where is my order", "777"):
        assert client.post(messages, {"text": text}, format="json").status_code == 200
    turns = Turn.objects.for_org(world.acme).filter(conversation_id=cid).order_by("index")
    assert [t.index for t in turns] == list(range(7))
    assert [t.role for t in turns] == ["agent", "user", "agent", "user", "agent", "user", "agent"]
    # Another request answered between this one's read and its write: its turns hold
    # the numbers this one would take (simulated by writing a turn behind its back).
    Turn.objects.create(org=world.acme, conversation_id=cid, index=7, role="user", text="raced")
    raced = client.post(messages, {"text": "hello"}, format="json")
    assert_envelope(raced, 409, "conflict")
    conversation = Conversation.objects.for_org(world.acme).get(pk=cid)
    assert conversation.turn_count == 7
    assert Turn.objects.for_org(world.acme).filter(conversation_id=cid).count() == 8


def test_a_message_costs_the_same_queries_however_long_the_conversation(world, django_assert_max_num_queries):
    agent, client, _ = live_setup(world)
    lineage = agent.lineage.slug
    cid = client.post(run_url("acme", lineage, "development"), {}, format="json").json()["conversation"]
    messages = run_url("acme", lineage, "development", f"{cid}/messages/")
    client.post(messages, {"text": "hello"}, format="json")  # compiles the version once
    # Key, conversation, then one transaction: the turns and the totals.
    with django_assert_max_num_queries(7):
        client.post(messages, {"text": "hello"}, format="json")
    for _ in range(20):
        client.post(messages, {"text": "How many days do I have to return an item?"}, format="json")
    with django_assert_max_num_queries(7):
        assert client.post(messages, {"text": "hello"}, format="json").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_a_message_is_three_statements_on_postgresql(world):
    """As served: the key, the conversation, and one statement for the turns and totals.
    (SQLite takes its write lock and commits around the insert and the update.)"""
    agent, client, _ = live_setup(world)
    lineage = agent.lineage.slug
    cid = client.post(run_url("acme", lineage, "development"), {}, format="json").json()["conversation"]
    messages = run_url("acme", lineage, "development", f"{cid}/messages/")
    client.post(messages, {"text": "hello"}, format="json")  # compiles the version once
    with CaptureQueriesContext(connection) as queries:
        assert client.post(messages, {"text": "hello"}, format="json").status_code == 200
    expected = 3 if connection.vendor == "postgresql" else 6
    assert len(queries) == expected, [q["sql"][:80] for q in queries]
