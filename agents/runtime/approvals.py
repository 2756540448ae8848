"""Tools that wait for a person (the stage policy's `action_approvals`).

An engine about to run a tool asks `gated()`: when the stage makes that tool wait, the
conversation gets `tool_approval_requested` and the engine waits for the decision. What
"waiting" means is the gate's business:
- the console's gate (agents/consumers.py) polls the approval row until a decision or
  the timeout, with the socket open;
- a live conversation's gate (`LiveGate`) cannot hold an HTTP request for minutes: it
  stops the turn (`AwaitingApproval`), and after the decision the turn is run again with
  the decisions known, so every waiting call finds its own by its place in the turn.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

APPROVED, REJECTED, EXPIRED = "approved", "rejected", "expired"


class AwaitingApproval(Exception):
    """A live turn stops at a call that waits; it goes on after the decision."""

    def __init__(self, approval_id: str):
        super().__init__(approval_id)
        self.approval_id = approval_id


class ApprovalGate:
    """Which tools wait, and how a waiting call gets its decision. Subclasses wait."""

    def __init__(self, tools=()):
        self.tools = frozenset(tools)
        self.position = 0  # waiting calls so far in this turn
        self.user_text = ""  # the message being answered (Session sets it), masked

    def needs(self, tool_name: str) -> bool:
        return tool_name in self.tools

    async def request(self, *, tool_call_id: str, tool_name: str, parameters: dict) -> str:
        """Open an approval for this call; its id."""
        raise NotImplementedError

    async def wait(self, approval_id: str) -> str:
        """The decision: approved, rejected or expired."""
        raise NotImplementedError

    def known_outcome(self, approval_id: str) -> dict | None:
        """A result the call already had (a live turn run again): not run twice."""
        return None


@dataclass
class Known:
    id: str
    status: str
    tool_name: str
    parameters: dict
    outcome: dict | None = None


@dataclass
class Opened:
    id: str
    position: int
    tool_call_id: str
    tool_name: str
    parameters: dict
    user_text: str = ""


@dataclass
class LiveGate(ApprovalGate):
    """A live conversation's gate: decisions already made, by place in the turn."""

    tools: frozenset = frozenset()
    known: dict[int, Known] = field(default_factory=dict)
    opened: list[Opened] = field(default_factory=list)
    position: int = 0
    user_text: str = ""

    def __post_init__(self):
        self.tools = frozenset(self.tools)

    async def request(self, *, tool_call_id, tool_name, parameters):
        self.position += 1
        known = self.known.get(self.position)
        if known is not None:
            if known.tool_name != tool_name or known.parameters != parameters:
                # Run again, the agent asks for something other than what was decided (a
                # model may): that decision does not cover it.
                known = Known(id=known.id, status=REJECTED, tool_name=tool_name, parameters=parameters)
                self.known[self.position] = known
            return known.id
        opened = Opened(str(uuid.uuid4()), self.position, tool_call_id, tool_name, parameters, self.user_text)
        self.opened.append(opened)
        return opened.id

    async def wait(self, approval_id):
        for known in self.known.values():
            if known.id == approval_id and known.status != "pending":
                return known.status
        raise AwaitingApproval(approval_id)

    def known_outcome(self, approval_id):
        for known in self.known.values():
            if known.id == approval_id:
                return known.outcome
        return None


async def gated(context, *, tool_name: str, tool_call_id: str, parameters: dict, outcome: dict):
    """Yield `tool_approval_requested` when the stage makes the tool wait, then wait;
    `outcome["decision"]` ends up approved, rejected or expired (approved when nothing
    waits), and `outcome["approval"]` the approval's id."""
    gate = getattr(context, "approvals", None)
    if gate is None or not gate.needs(tool_name):
        outcome["decision"] = APPROVED
        return
    shown = context.compiled.masker.mask(parameters)
    approval = await gate.request(tool_call_id=tool_call_id, tool_name=tool_name, parameters=shown)
    outcome["approval"] = approval
    yield {
        "type": "tool_approval_requested",
        "tool_call_id": tool_call_id,
        "tool_name": tool_name,
        "parameters": shown,
        "approval": approval,
    }
    outcome["decision"] = await gate.wait(approval)
    outcome["known"] = gate.known_outcome(approval)
