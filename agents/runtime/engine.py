"""The one interface every engine implements: a turn goes in, a stream of events comes out.

Events are flat dicts shaped like the WebSocket's server frames (without `seq`):
`agent_response_delta`, `tool_call`, `tool_result`, `error`, and at the end an
internal `_done` carrying the final text, sources, usage and details for the record.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol

from .compile import CompiledAgent
from .masking import SECRET_MASK
from .text import render


@dataclass
class Context:
    """Everything an engine may read about the conversation so far."""

    conversation_id: str
    compiled: CompiledAgent
    variables: dict = field(default_factory=dict)  # dynamic variables from the client
    overrides: dict = field(default_factory=dict)  # prompt, first_message, language
    history: list[dict] = field(default_factory=list)  # [{"role": "user"|"agent"|"context", "text"}]
    state: dict = field(default_factory=dict)  # the engine's own memory between turns
    turn: int = 0
    approvals: object = None  # an ApprovalGate: tools that wait for a person (approvals.py)

    def lookup(self, name: str, *, local: dict | None = None, for_output: bool = True):
        """A template variable: the stage's variables first, then this turn's slots and
        tool results, then the client's dynamic variables. A secret is usable, never echoed.

        The stage's variables win: a slot or a client variable named like one (an end
        user's `CRM_API_KEY`, `CRM_BASE_URL`) must not replace what the agent's authors
        set, nor redirect the secret it carries.
        """
        local = local or {}
        if "." in name:
            head, _, rest = name.partition(".")
            value = local.get(head)
            for part in rest.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            return value
        if name in self.compiled.variables:
            value, secret = self.compiled.variables[name]
            return SECRET_MASK if secret and for_output else value
        if name in local:
            return local[name]
        if name in self.variables:
            return self.variables[name]
        return None

    def render(self, template: str, local: dict | None = None, *, for_output: bool = True) -> str:
        return render(template, lambda name: self.lookup(name, local=local, for_output=for_output))

    @property
    def instructions(self) -> str:
        return self.overrides.get("prompt") or self.compiled.settings.get("instructions", "")

    def first_message(self) -> str:
        template = self.overrides.get("first_message") or self.compiled.settings.get("first_message", "")
        return self.render(template)

    def stable_choice(self, options: list[str], text: str) -> str:
        """Same input, same output: a variant chosen by a hash of the message."""
        digest = int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)
        return options[digest % len(options)]

    def response_id(self) -> str:
        return f"{self.conversation_id[:8]}-{self.turn}"

    def tool_call_id(self, n: int) -> str:
        return f"call_{self.conversation_id.replace('-', '')[:16]}_{self.turn}_{n}"


class Engine(Protocol):
    reads_history: bool  # False: callers need not load `Context.history`

    def respond(self, context: Context, text: str) -> AsyncIterator[dict]: ...


def engine_for(compiled: CompiledAgent) -> Engine:
    from .builtin import BuiltinEngine
    from .openai import OpenAIEngine

    return OpenAIEngine() if compiled.settings.get("engine") == "openai" else BuiltinEngine()
