"""The console and the gateway on a real uvicorn process with channels-redis and PostgreSQL."""

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import time

import httpx
import pytest
import websockets

from accounts.demo import seed_demo_org
from accounts.models import Stage, User
from accounts.services.auth import token_create
from agents.demo import seed_demo_agent
from agents.models import Conversation, Turn
from lifecycle.access import access_for
from rollouts.services.keys import stage_key_create
from tests.services.conftest import start_asgi

pytestmark = pytest.mark.django_db(transaction=True)
SOCKETS = int(os.environ.get("LIFECYCLE_WS_SOCKETS", "200"))
IDLE_SECONDS = 12
QUESTIONS = [
    ("hello", "Hello! How can I help you today?"),
    ("Where is order 31337?", "Order 31337 has shipped and should arrive in 2 days with ParcelCo."),
    (
        "talk to a person please",
        "I'll connect you with a colleague. You can also write to support@acme.test.",
    ),
]


@pytest.fixture
def demo():
    org, _ = seed_demo_org()
    agent = seed_demo_agent(org)
    tester = User.objects.get(email="tester@acme.test")
    _, token = token_create(user=tester, name="ws")
    return org, agent, token


async def one_conversation(url: str, n: int) -> dict:
    """Talk through the questions; return every frame received, in order."""
    frames: list[dict] = []
    async with websockets.connect(url, max_size=2**20, open_timeout=60) as socket:
        await socket.send(
            json.dumps({"type": "conversation_initiation_client_data", "dynamic_variables": {"n": str(n)}})
        )

        async def until(kind):
            while True:
                frame = json.loads(await asyncio.wait_for(socket.recv(), timeout=120))
                frames.append(frame)
                if frame["type"] == kind:
                    return frame

        await until("agent_response")  # the first message
        answers = []
        for question, _ in QUESTIONS:
            await socket.send(json.dumps({"type": "user_message", "text": question}))
            answers.append(await until("agent_response"))
        await socket.send(json.dumps({"type": "end_conversation"}))
        await until("conversation_ended")
    return {"frames": frames, "answers": answers}


def test_many_concurrent_console_conversations_lose_and_reorder_nothing(asgi_server, demo):
    org, agent, token = demo
    url = (
        asgi_server.replace("http://", "ws://")
        + f"/ws/orgs/{org.slug}/agents/{agent.pk}/conversation/?token={token}"
    )

    async def all_of_them():
        return await asyncio.gather(*(one_conversation(url, n) for n in range(SOCKETS)))

    started = time.monotonic()
    results = asyncio.run(all_of_them())
    elapsed = time.monotonic() - started
    for result in results:
        frames = result["frames"]
        # No frame lost or reordered: seq counts 1, 2, 3 … without a gap.
        assert [f["seq"] for f in frames] == list(range(1, len(frames) + 1))
        assert [a["text"] for a in result["answers"]] == [expected for _, expected in QUESTIONS]
        for answer in result["answers"]:
            deltas = [
                f["delta"]
                for f in frames
                if f.get("response_id") == answer["response_id"] and f["type"] == "agent_response_delta"
            ]
            assert "".join(deltas) == answer["text"]
    conversations = Conversation.objects.for_org(org).filter(agent=agent, source="console")
    assert conversations.count() == SOCKETS
    # Every turn was written: first message, three questions, three answers.
    assert Turn.objects.for_org(org).filter(conversation__in=conversations).count() == SOCKETS * 7
    print(f"{SOCKETS} concurrent conversations of {len(QUESTIONS)} turns in {elapsed:.1f}s")


def test_a_console_left_idle_keeps_answering(asgi_server, demo):
    """Longer than channels-redis's 5 s poll of the channel layer, which redis-py's own
    default 5 s socket timeout would cut (a TimeoutError that closes the socket)."""
    org, agent, token = demo
    url = (
        asgi_server.replace("http://", "ws://")
        + f"/ws/orgs/{org.slug}/agents/{agent.pk}/conversation/?token={token}"
    )

    async def talk_after_a_pause():
        async with websockets.connect(url, open_timeout=60) as socket:
            await socket.send(json.dumps({"type": "conversation_initiation_client_data"}))
            while json.loads(await socket.recv())["type"] != "agent_response":
                pass
            await asyncio.sleep(IDLE_SECONDS)
            await socket.send(json.dumps({"type": "user_message", "text": "hello"}))
            answer = None
            while answer is None:
                frame = json.loads(await asyncio.wait_for(socket.recv(), timeout=30))
                if frame["type"] == "agent_response":
                    answer = frame["text"]
            # End it before closing: the server's last writes are then done before the
            # test's database is emptied for the next one.
            await socket.send(json.dumps({"type": "end_conversation"}))
            while (
                json.loads(await asyncio.wait_for(socket.recv(), timeout=30))["type"] != "conversation_ended"
            ):
                pass
            return answer

    assert asyncio.run(talk_after_a_pause()) == "Hello! How can I help you today?"


def test_closed_consoles_leave_nothing_running_and_the_server_stops_at_once(services_env, broker, demo):
    """Every consumer ends with its socket: a graceful shutdown waits for none of them.
    (A blocking Redis read that swallowed its cancellation once kept them all alive.)"""
    org, agent, token = demo
    proc, base = start_asgi(services_env)
    try:
        url = (
            base.replace("http://", "ws://")
            + f"/ws/orgs/{org.slug}/agents/{agent.pk}/conversation/?token={token}"
        )

        async def some():
            return await asyncio.gather(*(one_conversation(url, n) for n in range(20)))

        assert len(asyncio.run(some())) == 20
        os.killpg(proc.process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.process.wait(timeout=10)
        assert proc.process.poll() is not None, "still running 10 s after SIGTERM:\n" + proc.log_tail()
    finally:
        proc.stop()


def test_the_gateway_with_a_stage_key_json_and_sse(asgi_server, demo):
    org, agent, _ = demo
    stage = Stage.objects.for_org(org).get(slug="development")
    _, key = stage_key_create(
        access=access_for(User.objects.get(email="admin@acme.test"), org), stage=stage, name="site"
    )
    base = f"/api/v1/run/{org.slug}/{agent.lineage.slug}/development/conversations/"
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=asgi_server, timeout=30, headers=headers) as http:
        started = http.post(base, json={"user": "visitor-1"})
        assert started.status_code == 201, started.text
        cid = started.json()["conversation"]
        said = http.post(f"{base}{cid}/messages/", json={"text": "Where is order 555?"})
        assert (
            said.json()["events"][-1]["text"]
            == "Order 555 has shipped and should arrive in 2 days with ParcelCo."
        )
        with http.stream(
            "POST", f"{base}{cid}/messages/", json={"text": "hello"}, headers={"Accept": "text/event-stream"}
        ) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            events = []
            name = None
            for line in response.iter_lines():
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: "):
                    events.append((name, json.loads(line[6:])))
        assert events[-1] == ("done", {})
        assert [n for n, _ in events] == ["agent_response_delta", "agent_response", "done"]
        final = next(data for n, data in events if n == "agent_response")
        assert final["text"] == events[0][1]["delta"] == "Hello! How can I help you today?"
        wrong = http.post(base.replace("/development/", "/testing/"), json={})
        assert wrong.status_code == 401
    assert Turn.objects.for_org(org).filter(conversation_id=cid).count() == 5
