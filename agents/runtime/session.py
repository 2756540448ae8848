"""One conversation in progress: runs turns through the engine, streams them, measures
latency, honours interruptions, and collects what happened for the record.

Used by the console (a WebSocket, many turns in memory) and the gateway (one request per
turn, state reloaded from the database). Writing turns is the caller's job, so the
console can batch them off the response path.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import aclosing
from dataclasses import dataclass, field

from .approvals import AwaitingApproval
from .compile import CompiledAgent
from .engine import Context, engine_for
from .masking import StreamMasker, storable
from .text import words


@dataclass
class Session:
    conversation_id: str
    compiled: CompiledAgent
    variables: dict = field(default_factory=dict)
    overrides: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)
    # Turns recorded before `history` begins: the gateway skips loading a history the
    # engine never reads, but new turns must still be numbered after the old ones.
    earlier_turns: int = 0
    state: dict = field(default_factory=dict)
    stream_delay: float = 0.0  # seconds between deltas when an engine does not stream itself
    pending: list[dict] = field(default_factory=list)  # turns not yet written
    approvals: object = None  # an ApprovalGate, when the stage makes some tools wait
    # A live turn stopped at a call that waits for a person: that approval's id.
    awaiting: str | None = None
    _interrupt: asyncio.Event | None = None
    _responding: bool = False

    def __post_init__(self):
        self.context = Context(
            conversation_id=self.conversation_id,
            compiled=self.compiled,
            variables=self.variables,
            overrides=self.overrides,
            history=self.history,
            state=self.state,
            turn=self.turn_count,
            approvals=self.approvals,
        )
        self.engine = engine_for(self.compiled)
        self.masker = self.compiled.masker

    async def respond(self, text: str, *, again: bool = False):
        """Yield the frames of one exchange, with the stage's secret values masked in
        every one, whatever the engine or its tools brought back.

        `again`: the user's message is already recorded (a live turn that stopped at a
        call waiting for a person, run again once it is decided).
        """
        async with aclosing(self._respond(text, again=again)) as frames:
            async for frame in frames:
                yield self.masker.mask(frame)

    # --- turns --------------------------------------------------------------------------
    @property
    def turn_count(self) -> int:
        return self.earlier_turns + len(self.history)

    def _record(self, role: str, text: str, **extra) -> None:
        index = self.turn_count
        self.history.append({"role": role, "text": text})
        # Stored turns (and the conversation detail the API shows) never hold a secret,
        # nor a character the database refuses (a model's or a webhook's NUL).
        self.pending.append(storable(self.masker.mask({"index": index, "role": role, "text": text, **extra})))

    def first_message(self) -> dict | None:
        text = self.context.first_message()
        if not text:
            return None
        self.context.turn = self.turn_count
        response_id = self.context.response_id()
        self._record("agent", text, response_id=response_id, latency_first_ms=0, latency_total_ms=0)
        return {
            "type": "agent_response",
            "response_id": response_id,
            "text": text,
            "sources": [],
            "latency_ms": 0,
        }

    def add_context(self, text: str) -> None:
        self._record("context", text)

    @property
    def responding(self) -> bool:
        return self._responding

    def interrupt(self) -> bool:
        """Stop the response in progress, if any. True if there was one."""
        if self._responding and self._interrupt is not None:
            self._interrupt.set()
            return True
        return False

    async def _respond(self, text: str, *, again: bool = False):
        """Yield the frames of one exchange: deltas, tools, errors, and the final response."""
        self._responding, self._interrupt = True, asyncio.Event()
        self.awaiting = None
        started = time.perf_counter()
        first_delta: float | None = None
        delivered: list[str] = []
        errors: list[dict] = []
        tools: list[dict] = []
        if not again:
            self._record("user", text)
        if self.approvals is not None:
            self.approvals.user_text = self.masker.text(text)
        self.context.turn = self.turn_count
        response_id = self.context.response_id()

        def latency(at: float | None) -> int | None:
            return None if at is None else round((at - started) * 1000)

        final: dict | None = None
        # An engine's own deltas may split a secret in two: masked as a stream.
        stream = StreamMasker(self.masker)

        def held() -> list[dict]:
            rest = stream.flush()
            return (
                [{"type": "agent_response_delta", "response_id": response_id, "delta": rest}] if rest else []
            )

        try:
            # Closed here when we stop reading early (the final answer, an interruption),
            # not whenever the garbage collector finds it, on a loop that may be gone.
            async with aclosing(self.engine.respond(self.context, text)) as events:
                async for event in events:
                    kind = event["type"]
                    if kind == "agent_response_delta":
                        if self._interrupt.is_set():
                            break
                        first_delta = first_delta or time.perf_counter()
                        delivered.append(event["delta"])
                        piece = stream.feed(event["delta"])
                        if piece:
                            yield {**event, "delta": piece, "response_id": response_id}
                        continue
                    for frame in held():
                        yield frame
                    if kind == "_done":
                        # Masked whole before it is cut into words: a secret with spaces
                        # would otherwise go out a word at a time.
                        event = {**event, "text": self.masker.text(event.get("text") or "")}
                        if not delivered:  # the engine answered whole: stream it ourselves
                            # Paced (the console), word by word; unpaced, in one delta: each delta
                            # is a frame, and frames that arrive together gain the reader nothing.
                            if self.stream_delay:
                                pieces = words(event["text"])
                            else:
                                pieces = [event["text"]] if event["text"] else []
                            for piece in pieces:
                                if self._interrupt.is_set():
                                    break
                                first_delta = first_delta or time.perf_counter()
                                delivered.append(piece)
                                yield {
                                    "type": "agent_response_delta",
                                    "response_id": response_id,
                                    "delta": piece,
                                }
                                if self.stream_delay:
                                    await asyncio.sleep(self.stream_delay)
                        final = event
                        break
                    if kind in ("tool_call", "tool_result", "tool_approval_requested"):
                        tools.append(event)
                    elif kind == "error":
                        errors.append(event)
                    yield event
        except AwaitingApproval as exc:
            # The turn goes on after the decision; nothing of the agent's is recorded yet.
            self.awaiting = exc.approval_id
        else:
            async for frame in self._finish(
                response_id, final, delivered, errors, tools, held, latency, first_delta
            ):
                yield frame
        finally:
            self._responding = False

    async def _finish(self, response_id, final, delivered, errors, tools, held, latency, first_delta):
        """The end of an exchange: the final response (or the correction of an
        interrupted one), and the agent's turn for the record."""
        for frame in held():
            yield frame
        spoken = "".join(delivered)
        final = final or {"text": spoken, "sources": [], "details": {}, "usage": {}}
        if self._interrupt.is_set():
            yield {"type": "interruption", "response_id": response_id}
            yield {
                "type": "agent_response_correction",
                "response_id": response_id,
                "original": final.get("text", spoken),
                "corrected": spoken,
            }
        else:
            yield {
                "type": "agent_response",
                "response_id": response_id,
                "text": final["text"],
                "sources": final.get("sources", []),
                "latency_ms": latency(time.perf_counter()),
            }
        usage = final.get("usage", {})
        self._record(
            "agent",
            spoken if self._interrupt.is_set() else final["text"],
            response_id=response_id,
            interrupted=self._interrupt.is_set(),
            latency_first_ms=latency(first_delta),
            latency_total_ms=latency(time.perf_counter()),
            tokens_in=usage.get("tokens_in", 0),
            tokens_out=usage.get("tokens_out", 0),
            cost=usage.get("cost", 0),
            details={**final.get("details", {}), "sources": final.get("sources", []), "tools": tools},
            error=errors[0] if errors else None,
        )

    def take_pending(self) -> list[dict]:
        pending, self.pending = self.pending, []
        return pending
