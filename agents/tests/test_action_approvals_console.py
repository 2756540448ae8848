"""Action approvals in the console: the socket stays open while a person decides."""

import asyncio
import json

import pytest

from accounts.services.auth import token_create
from agents.models import ActionApproval
from lifecycle.asgi import application
from tests.factories import make_world
from tests.http_servers import Recorder
from tests.ws import WebsocketCommunicator

from .approvals_setup import SECRET, refund_agent, refund_server_handler

pytestmark = pytest.mark.django_db(transaction=True)


async def frames_until(communicator, kind: str, timeout: float = 10) -> list[dict]:
    seen = []
    while True:
        frame = json.loads(await communicator.receive_from(timeout=timeout))
        if frame["type"] == "ping":
            continue
        seen.append(frame)
        if frame["type"] == kind:
            return seen


async def console(server, *, timeout="15m"):
    def setup():
        world = make_world()
        agent, _ = refund_agent(world.acme, server.url, timeout=timeout)
        key = token_create(user=world.users["developer"], name="ws")[1]
        return world, agent, key

    world, agent, key = await asyncio.to_thread(setup)
    communicator = WebsocketCommunicator(
        application, f"/ws/orgs/acme/agents/{agent.pk}/conversation/?token={key}"
    )
    assert (await communicator.connect())[0]
    return world, communicator


async def waiting_for_approval(communicator, text=f"refund order 42 note {SECRET}"):
    await communicator.send_json_to({"type": "user_message", "text": text})
    frames = await frames_until(communicator, "tool_approval_requested")
    return frames[-1]


async def decide(world, who, approval, verb, comment=""):
    def post():
        return world.client(who).post(
            f"/api/v1/orgs/acme/action-approvals/{approval}/{verb}/", {"comment": comment}, format="json"
        )

    return await asyncio.to_thread(post)


async def test_approved_the_tool_runs_and_the_answer_follows():
    with Recorder(refund_server_handler) as server:
        world, communicator = await console(server)
        waiting = await waiting_for_approval(communicator)
        assert waiting["tool_name"] == "issue_refund"
        # The secret the user typed is masked in the frame, in the row and in the inbox.
        assert waiting["parameters"] == {"order_id": "42", "note": "••••••"}
        listed = await asyncio.to_thread(
            lambda: (
                world.client("developer").get("/api/v1/orgs/acme/action-approvals/?status=pending").content
            )
        )
        assert SECRET not in listed.decode() and waiting["approval"] in listed.decode()
        row = await asyncio.to_thread(
            lambda: ActionApproval.objects.for_org(world.acme).get(pk=waiting["approval"])
        )
        assert SECRET not in json.dumps(row.parameters) + row.user_text
        await asyncio.sleep(0.3)
        assert server.requests == []  # it waits: nothing ran
        # A viewer may not decide; the call keeps waiting.
        assert (await decide(world, "viewer", waiting["approval"], "approve")).status_code == 403
        response = await decide(world, "developer", waiting["approval"], "approve", "fine")
        assert response.status_code == 200, response.content
        rest = await frames_until(communicator, "agent_response")
        assert rest[0]["type"] == "tool_result" and rest[0]["result"] == {"refund_id": "R-42"}
        assert rest[-1]["text"] == "Refund R-42 issued for order 42."
        assert len(server.requests) == 1
        # The conversation goes on.
        await communicator.send_json_to({"type": "user_message", "text": "thanks"})
        assert (await frames_until(communicator, "agent_response"))[-1]["type"] == "agent_response"
        await communicator.disconnect()


async def test_rejected_the_agent_answers_without_the_tool():
    with Recorder(refund_server_handler) as server:
        world, communicator = await console(server)
        waiting = await waiting_for_approval(communicator, "refund order 7")
        assert (await decide(world, "owner", waiting["approval"], "reject", "no")).status_code == 200
        rest = await frames_until(communicator, "agent_response")
        assert rest[0] == {
            "type": "tool_result",
            "tool_call_id": waiting["tool_call_id"],
            "error": "rejected",
            "seq": rest[0]["seq"],
        }
        assert "approval" in rest[-1]["text"]
        assert server.requests == []
        await communicator.disconnect()


async def test_timed_out_the_call_expires_and_the_agent_goes_on(settings):
    settings.ACTION_APPROVAL_POLL_SECONDS = 0.1
    with Recorder(refund_server_handler) as server:
        world, communicator = await console(server, timeout="1s")
        waiting = await waiting_for_approval(communicator, "refund order 7")
        rest = await frames_until(communicator, "agent_response", timeout=5)
        assert rest[0]["error"] == "expired"
        assert server.requests == []
        row = await asyncio.to_thread(
            lambda: ActionApproval.objects.for_org(world.acme).get(pk=waiting["approval"])
        )
        assert row.status == "expired"
        late = await decide(world, "developer", waiting["approval"], "approve")
        assert late.status_code == 409
        await communicator.disconnect()
