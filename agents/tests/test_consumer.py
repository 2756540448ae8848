"""The console's WebSocket: every client frame, every error path, the close codes."""

import asyncio
import json

import pytest
from django.test import Client

from accounts.services.auth import token_create
from agents.models import Agent, Conversation, TestResult, Turn
from agents.runtime.compile import CACHE
from lifecycle.asgi import application
from tests.factories import add_component, knowledge, make_agent, make_world, skill
from tests.ws import WebsocketCommunicator

pytestmark = pytest.mark.django_db(transaction=True)
ORIGIN = (b"origin", b"http://localhost")


def path(org, agent):
    return f"/ws/orgs/{org}/agents/{agent}/conversation/"


async def connect(url, headers=()):
    communicator = WebsocketCommunicator(application, url, headers=list(headers))
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def closed_with(communicator) -> int:
    message = await communicator.receive_output(timeout=5)
    assert message["type"] == "websocket.close", message
    return message["code"]


async def frames_until(communicator, kind: str, timeout: float = 5) -> list[dict]:
    seen = []
    while True:
        frame = json.loads(await communicator.receive_from(timeout=timeout))
        seen.append(frame)
        if frame["type"] == kind:
            return seen


@pytest.fixture
def setup(db):
    CACHE.clear()
    world = make_world()
    agent = make_agent(world.acme, "Console bot")
    add_component(agent, "skill", "greet", skill(["hello"], ["Hi {{name}}, welcome!"]))
    add_component(
        agent, "knowledge", "hours", knowledge("Opening hours", "We are open from 9 to 5 on weekdays.")
    )
    add_component(
        agent,
        "tool",
        "lookup",
        {"description": "d", "parameters": {"type": "object"}, "response": {"state": "ready"}},
    )
    add_component(
        agent, "skill", "status", skill(["check my status"], ["Status: {{tool.state}}."], tool="lookup")
    )
    tokens = {who: token_create(user=user, name="ws")[1] for who, user in world.users.items()}
    return world, agent, tokens


def tokened(world, agent, key):
    return path(world.acme.slug, agent.pk) + f"?token={key}"


async def test_close_codes(setup):
    world, agent, tokens = setup
    assert await closed_with(await connect(path("acme", agent.pk))) == 4401
    assert await closed_with(await connect(path("acme", agent.pk) + "?token=lc_nope")) == 4401
    assert await closed_with(await connect(tokened(world, agent, tokens["outsider"]))) == 4404
    assert await closed_with(await connect(tokened(world, agent, tokens["member"]))) == 4404  # no role there
    other = await asyncio.to_thread(lambda: make_agent(world.globex))
    assert await closed_with(await connect(path("acme", other.pk) + f"?token={tokens['owner']}")) == 4404
    assert await closed_with(await connect(path("globex", other.pk) + f"?token={tokens['owner']}")) == 4404
    await asyncio.to_thread(
        lambda: Agent.objects.for_org(world.acme).filter(pk=agent.pk).update(archived_at=agent.created_at)
    )
    assert await closed_with(await connect(tokened(world, agent, tokens["developer"]))) == 4403


async def test_session_auth_needs_our_origin(setup):
    world, agent, _tokens = setup

    def login_cookie():
        client = Client()
        client.force_login(world.users["developer"])
        return client.cookies["sessionid"].value

    cookie = (b"cookie", f"sessionid={await asyncio.to_thread(login_cookie)}".encode())
    assert await closed_with(await connect(path("acme", agent.pk), [cookie])) == 4401  # no Origin
    assert (
        await closed_with(await connect(path("acme", agent.pk), [cookie, (b"origin", b"https://evil.test")]))
        == 4401
    )
    communicator = await connect(path("acme", agent.pk), [cookie, ORIGIN])
    await communicator.send_json_to({"type": "user_message", "text": "hello"})
    frames = await frames_until(communicator, "agent_response")
    assert frames[0]["type"] == "conversation_initiation_metadata"
    await communicator.disconnect()


async def test_a_whole_conversation(setup, settings):
    world, agent, tokens = setup
    communicator = await connect(tokened(world, agent, tokens["tester"]))
    await communicator.send_json_to(
        {
            "type": "conversation_initiation_client_data",
            "dynamic_variables": {"name": "Ada"},
            "conversation_config_override": {
                "agent": {"first_message": "Welcome to the console!", "language": "en"}
            },
        }
    )
    start = await frames_until(communicator, "agent_response")
    meta = start[0]
    assert meta["type"] == "conversation_initiation_metadata" and meta["agent_id"] == str(agent.pk)
    assert meta["version"] == 1 and meta["draft"] is True
    assert start[-1]["text"] == "Welcome to the console!"

    await communicator.send_json_to({"type": "user_message", "text": "hello"})
    frames = await frames_until(communicator, "agent_response")
    assert frames[0] == {"type": "user_transcript", "text": "hello", "seq": frames[0]["seq"]}
    deltas = [f for f in frames if f["type"] == "agent_response_delta"]
    assert "".join(d["delta"] for d in deltas) == frames[-1]["text"] == "Hi Ada, welcome!"
    assert frames[-1]["latency_ms"] >= 0 and frames[-1]["response_id"] == deltas[0]["response_id"]

    await communicator.send_json_to({"type": "user_message", "text": "check my status"})
    frames = await frames_until(communicator, "agent_response")
    kinds = [f["type"] for f in frames]
    assert kinds.index("tool_call") < kinds.index("tool_result") < kinds.index("agent_response")
    assert frames[-1]["text"] == "Status: ready."

    await communicator.send_json_to({"type": "user_message", "text": "When are you open?"})
    frames = await frames_until(communicator, "agent_response")
    assert frames[-1]["sources"][0]["title"] == "Opening hours"

    await communicator.send_json_to({"type": "contextual_update", "text": "The user is on the pricing page."})
    await communicator.send_json_to(
        {"type": "save_test_result", "rating": 4, "notes": "Good", "status": "passed"}
    )
    saved = await frames_until(communicator, "test_result_saved")
    seqs = [f["seq"] for f in start + frames + saved]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    await communicator.send_json_to({"type": "end_conversation"})
    await frames_until(communicator, "conversation_ended")
    await communicator.send_json_to({"type": "user_message", "text": "hello again"})
    error = await frames_until(communicator, "error")
    assert error[-1]["code"] == "conversation_ended"
    await communicator.disconnect()

    def check():
        result = TestResult.objects.for_org(world.acme).get(pk=saved[-1]["id"])
        conversation = Conversation.objects.for_org(world.acme).get(pk=meta["conversation_id"])
        assert result.conversation_id == conversation.pk and result.rating == 4 and result.version == 1
        assert [t["role"] for t in result.transcript][:3] == ["agent", "user", "agent"]
        turns = list(Turn.objects.for_org(world.acme).filter(conversation=conversation).order_by("index"))
        assert [t.role for t in turns] == [
            "agent",
            "user",
            "agent",
            "user",
            "agent",
            "user",
            "agent",
            "context",
        ]
        agent_turn = turns[2]
        assert agent_turn.latency_total_ms is not None and agent_turn.details["skill"] == "greet"
        assert turns[4].details["tools"][0]["tool_name"] == "lookup"
        assert conversation.source == "console" and conversation.ended_at is not None
        assert conversation.turn_count == 8 and conversation.tokens_out > 0
        assert conversation.rating == 4, "the tester's rating rates the conversation too"

    await asyncio.to_thread(check)


async def test_queued_messages_are_answered_in_order(setup):
    world, agent, tokens = setup
    communicator = await connect(tokened(world, agent, tokens["developer"]))
    for text in ("hello", "check my status", "When are you open?"):
        await communicator.send_json_to({"type": "user_message", "text": text})
    answers = []
    for _ in range(4):  # the first message, then one answer per question, in order
        answers.append((await frames_until(communicator, "agent_response"))[-1]["text"])
    assert answers[0] == "Hi! How can I help?"
    assert answers[1] == "Hi , welcome!" and answers[2] == "Status: ready." and "9 to 5" in answers[3]
    await communicator.disconnect()


async def test_user_activity_interrupts_the_answer(setup, settings):
    settings.CONSOLE_STREAM_DELAY_MS = 40
    world, agent, tokens = setup
    await asyncio.to_thread(
        lambda: add_component(agent, "skill", "story", skill(["tell me a story"], [" ".join(["word"] * 60)]))
    )
    CACHE.clear()
    communicator = await connect(tokened(world, agent, tokens["developer"]))
    await communicator.send_json_to({"type": "user_message", "text": "tell me a story"})
    await frames_until(communicator, "agent_response_delta")
    await communicator.send_json_to({"type": "user_activity"})
    frames = await frames_until(communicator, "agent_response_correction")
    interruption = next(f for f in frames if f["type"] == "interruption")
    correction = frames[-1]
    assert correction["response_id"] == interruption["response_id"]
    assert len(correction["corrected"]) < len(correction["original"])
    assert correction["original"].startswith(correction["corrected"])
    assert not any(f["type"] == "agent_response" for f in frames)
    await communicator.disconnect()


async def test_bad_frames_get_error_frames_and_the_socket_stays_open(setup, settings):
    settings.WS_MAX_FRAME_BYTES = 2000
    world, agent, tokens = setup
    communicator = await connect(tokened(world, agent, tokens["developer"]))
    cases = [
        ("{not json", "malformed"),
        ("[1, 2]", "malformed"),
        (json.dumps({"text": "no type"}), "malformed"),
        (json.dumps({"type": "dance"}), "unknown_type"),
        (json.dumps({"type": "user_message", "text": ""}), "invalid"),
        (json.dumps({"type": "user_message", "text": 42}), "invalid"),
        (json.dumps({"type": "user_message", "text": "x" * 3000}), "too_large"),
        (json.dumps({"type": "pong", "event_id": "x"}), "invalid"),
        (json.dumps({"type": "save_test_result", "rating": 9}), "invalid"),
        (json.dumps({"type": "save_test_result", "rating": 3}), "invalid"),  # nothing said yet
        (json.dumps({"type": "conversation_initiation_client_data", "dynamic_variables": "nope"}), "invalid"),
    ]
    for raw, code in cases:
        await communicator.send_to(text_data=raw)
        frame = json.loads(await communicator.receive_from(timeout=5))
        assert (frame["type"], frame["code"]) == ("error", code), raw
    await communicator.send_json_to({"type": "user_message", "text": "hello"})
    assert (await frames_until(communicator, "agent_response"))[-1]["text"].startswith("Hi")
    await communicator.disconnect()


async def test_ping_and_pong(setup, settings):
    settings.WS_PING_SECONDS = 0.2
    world, agent, tokens = setup
    communicator = await connect(tokened(world, agent, tokens["developer"]))
    ping = json.loads(await communicator.receive_from(timeout=5))
    assert ping["type"] == "ping" and ping["event_id"] == 1
    await communicator.send_json_to({"type": "pong", "event_id": ping["event_id"]})
    nxt = json.loads(await communicator.receive_from(timeout=5))
    assert nxt["type"] == "ping" and nxt["event_id"] == 2 and nxt["seq"] > ping["seq"]
    await communicator.disconnect()
