"""The runtime's side of action approvals: both engines ask the gate before a tool runs."""

import asyncio
import json

import pytest

from agents.runtime.approvals import ApprovalGate, AwaitingApproval, Known, LiveGate
from agents.runtime.compile import compile_working_copy
from agents.runtime.session import Session
from tests.http_servers import Recorder

from .test_runtime_openai import openai_agent, sse

CID = "00000000-0000-4000-8000-00000000abcd"


class Decided(ApprovalGate):
    """A gate whose person has already made up their mind."""

    def __init__(self, decision):
        super().__init__(["lookup"])
        self.decision, self.asked = decision, []

    async def request(self, *, tool_call_id, tool_name, parameters):
        self.asked.append((tool_call_id, tool_name, parameters))
        return "approval-1"

    async def wait(self, approval_id):
        return self.decision


def model(recorder, request):
    messages = request["body"]["messages"]
    if messages[-1]["role"] == "tool":
        said = json.loads(messages[-1]["content"])
        text = f"Status: {said['status']}." if "status" in said else f"I could not look: {said['error']}."
        return 200, sse({"choices": [{"delta": {"content": text}}]}), 0
    call = {"index": 0, "id": "call_x", "function": {"name": "lookup", "arguments": '{"order_id": "5"}'}}
    return 200, sse({"choices": [{"delta": {"tool_calls": [call]}}]}), 0


def run(session, text):
    async def go():
        return [e async for e in session.respond(text)]

    return asyncio.run(go())


@pytest.mark.parametrize(
    ("decision", "result", "answer"),
    [
        ("approved", {"result": {"status": "shipped"}}, "Status: shipped."),
        ("rejected", {"error": "rejected"}, "I could not look: rejected."),
        ("expired", {"error": "expired"}, "I could not look: expired."),
    ],
)
def test_the_openai_engine_waits_for_the_decision(world, decision, result, answer):
    gate = Decided(decision)
    with Recorder(model) as server:
        agent = openai_agent(world.acme, server.url + "/v1")
        session = Session(conversation_id=CID, compiled=compile_working_copy(agent), approvals=gate)
        frames = run(session, "where is order 5")
    kinds = [f["type"] for f in frames]
    assert kinds[:3] == ["tool_call", "tool_approval_requested", "tool_result"]
    assert frames[1] == {
        "type": "tool_approval_requested",
        "tool_call_id": "call_x",
        "tool_name": "lookup",
        "parameters": {"order_id": "5"},
        "approval": "approval-1",
    }
    assert {k: v for k, v in frames[2].items() if k not in ("type", "tool_call_id")} == result
    assert frames[-1]["type"] == "agent_response" and frames[-1]["text"] == answer
    # The model heard the outcome, not a tool that silently ran.
    assert json.loads(server.requests[-1]["body"]["messages"][-1]["content"]) == result.get("result", result)


def test_a_live_turn_stops_at_the_waiting_call_and_records_no_answer(world):
    with Recorder(model) as server:
        agent = openai_agent(world.acme, server.url + "/v1")
        gate = LiveGate(tools=["lookup"])
        session = Session(conversation_id=CID, compiled=compile_working_copy(agent), approvals=gate)
        frames = run(session, "where is order 5")
    assert [f["type"] for f in frames] == ["tool_call", "tool_approval_requested"]
    assert session.awaiting == gate.opened[0].id == frames[-1]["approval"]
    assert [t["role"] for t in session.take_pending()] == ["user"]


def test_run_again_a_call_other_than_the_approved_one_is_refused(world):
    with Recorder(model) as server:
        agent = openai_agent(world.acme, server.url + "/v1")
        # Approved for order 4; the model now asks for order 5.
        gate = LiveGate(tools=["lookup"], known={1: Known("a1", "approved", "lookup", {"order_id": "4"})})
        session = Session(conversation_id=CID, compiled=compile_working_copy(agent), approvals=gate)
        frames = run(session, "where is order 5")
    assert next(f for f in frames if f["type"] == "tool_result")["error"] == "rejected"


def test_a_pending_live_call_raises_inside_the_gate_only():
    gate = LiveGate(tools=["lookup"], known={1: Known("a1", "pending", "lookup", {})})
    with pytest.raises(AwaitingApproval):
        asyncio.run(gate.wait("a1"))
