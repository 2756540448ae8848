"""The live test console: a WebSocket conversation with an agent's working copy.

Protocol (API.md): flat JSON frames with a `type`; every server frame carries an
increasing `seq`. User messages are answered one at a time (a second one waits in a
queue); `user_activity` interrupts the answer in progress. Turns are written in batches
off the response path. A malformed, unknown or oversized frame gets an `error` frame and
the connection stays open.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
import time

from channels.db import database_sync_to_async
from django.conf import settings

from lifecycle.api import ObjectAction, Rule
from lifecycle.consumers import OrgScopedConsumer
from lifecycle.errors import DomainError
from lifecycle.serializers import MAX_JSON_DEPTH, find_unstorable

from .hooks import action_approval_policy, conversation_guard
from .models import Agent, ConversationSource
from .models.testresult import TestResultStatus
from .runtime.approvals import ApprovalGate
from .runtime.compile import compile_working_copy
from .runtime.recorder import recorder
from .runtime.session import Session
from .services.action_approvals import (
    action_approval_expire,
    action_approval_open,
    action_approval_status,
)
from .services.conversations import conversation_finish, conversation_start, transcript_of
from .services.testresults import test_result_record

logger = logging.getLogger(__name__)
MAX_TEXT = 10_000


class FrameError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def _text(frame: dict, name: str = "text", *, required: bool = True) -> str:
    value = frame.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise FrameError("invalid", f"`{name}` must be a non-empty string.")
    if len(value) > MAX_TEXT or "\x00" in value:
        raise FrameError("invalid", f"`{name}` must be at most {MAX_TEXT} characters, without NUL.")
    return value


class ConsoleGate(ApprovalGate):
    """The console waits for a person with the socket open: the approval's row is
    looked at every ACTION_APPROVAL_POLL_SECONDS until a decision or the timeout, which
    expires it (a decision that came first stands)."""

    def __init__(self, consumer, tools, timeout_seconds: int):
        super().__init__(tools)
        self.consumer, self.timeout = consumer, timeout_seconds
        self.turn = -1

    async def request(self, *, tool_call_id, tool_name, parameters):
        turn = self.consumer.session.context.turn
        if turn != self.turn:
            self.turn, self.position = turn, 0
        self.position += 1
        approval = await database_sync_to_async(action_approval_open)(
            conversation=self.consumer.conversation,
            turn=turn,
            position=self.position,
            tool_call_id=tool_call_id,
            tool_name=tool_name,
            parameters=parameters,
            user_text=self.user_text,
            timeout_seconds=self.timeout,
        )
        return str(approval.pk)

    async def wait(self, approval_id):
        org_id = self.consumer.access.org.pk
        deadline = time.monotonic() + self.timeout
        while True:
            status = await database_sync_to_async(action_approval_status)(
                org_id=org_id, approval_id=approval_id
            )
            if status != "pending":
                return status
            left = deadline - time.monotonic()
            if left <= 0:
                return await database_sync_to_async(action_approval_expire)(
                    org_id=org_id, approval_id=approval_id, due_only=False
                )
            await asyncio.sleep(min(settings.ACTION_APPROVAL_POLL_SECONDS, left))


class Talkable(Rule):
    """Anyone who can see the agent may talk to it, unless it is archived."""

    def allows(self, access, view, obj=None):
        return obj is None or (ObjectAction("view").allows(access, view, obj) and not obj.archived)


class ConversationConsumer(OrgScopedConsumer):
    model = Agent
    url_kwarg = "agent_id"
    rule = Talkable()

    async def on_connect(self):
        self.seq = 0
        self.send_lock = asyncio.Lock()
        self.session: Session | None = None
        self.conversation = None
        self.state_written: dict = {}
        self.started = time.monotonic()
        self.ended = False
        self.queue: asyncio.Queue[str] = asyncio.Queue()
        self.tasks = [asyncio.create_task(self._answer_loop()), asyncio.create_task(self._ping_loop())]
        self.ping_id = 0

    async def on_disconnect(self, code):
        for task in getattr(self, "tasks", []):
            task.cancel()
        for task in getattr(self, "tasks", []):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self._flush()
        if self.conversation is not None and not self.ended:
            await database_sync_to_async(conversation_finish)(self.conversation)

    async def emit(self, frame: dict) -> None:
        async with self.send_lock:
            self.seq += 1
            await self.send_json({**frame, "seq": self.seq})

    # --- frames from the client -----------------------------------------------------------
    async def on_frame(self, text_data, bytes_data):
        try:
            frame = self._parse(text_data, bytes_data)
            handler = getattr(self, f"on_{frame['type']}", None)
            if handler is None or frame["type"] not in CLIENT_TYPES:
                raise FrameError("unknown_type", f"Unknown frame type {frame['type']!r}.")
            await handler(frame)
        except FrameError as exc:
            await self.emit({"type": "error", "code": exc.code, "message": exc.message})
        except DomainError as exc:
            await self.emit({"type": "error", "code": exc.default_code, "message": exc.message})
        except Exception:
            # A frame we failed on is that frame's error, not the end of the socket.
            logger.exception("the console failed on a frame")
            await self.emit(
                {"type": "error", "code": "internal_error", "message": "That frame could not be handled."}
            )

    def _parse(self, text_data, bytes_data) -> dict:
        size = len(text_data) if text_data is not None else len(bytes_data or b"")
        if size > settings.WS_MAX_FRAME_BYTES:  # characters ≤ bytes: a cheap first cut
            raise FrameError("too_large", f"Frames are at most {settings.WS_MAX_FRAME_BYTES} bytes.")
        try:
            # Strict: text that is not UTF-8 is refused here, not stored to fail later.
            raw = text_data if text_data is not None else (bytes_data or b"").decode("utf-8")
            encoded = raw.encode("utf-8")
        except UnicodeError as exc:
            raise FrameError("invalid", "Frames are UTF-8 text.") from exc
        if len(encoded) > settings.WS_MAX_FRAME_BYTES:
            raise FrameError("too_large", f"Frames are at most {settings.WS_MAX_FRAME_BYTES} bytes.")
        try:
            frame = json.loads(raw)
        except RecursionError as exc:  # deep nesting: refused, the socket stays open
            raise FrameError("malformed", "Frames are JSON objects, nested at most a few levels.") from exc
        except ValueError as exc:
            raise FrameError("malformed", "Frames are JSON objects.") from exc
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            raise FrameError("malformed", "Frames are JSON objects with a string `type`.")
        # `\u0000` and `\ud800` are valid JSON escapes, yet no turn, variable or note can
        # be stored with them: one such row once made the shared turn writer drop every
        # socket's batch. Refused anywhere in the frame (text, dynamic_variables keys and
        # values, overrides, notes), as is absurd nesting.
        bad = find_unstorable(frame)
        if bad is not None:
            raise FrameError(
                "invalid",
                f"`{bad}`: text must be UTF-8 without NUL or unpaired surrogates, "
                f"nested at most {MAX_JSON_DEPTH} levels.",
            )
        return frame

    async def on_conversation_initiation_client_data(self, frame):
        if self.session is not None:
            raise FrameError("invalid", "The conversation has already started.")
        variables = frame.get("dynamic_variables") or {}
        if not isinstance(variables, dict) or not all(
            isinstance(k, str) and isinstance(v, (str, int, float, bool)) for k, v in variables.items()
        ):
            raise FrameError("invalid", "`dynamic_variables` is an object of strings, numbers and booleans.")
        config = frame.get("conversation_config_override") or {}
        agent_override = config.get("agent") or {} if isinstance(config, dict) else None
        prompt = agent_override.get("prompt") or {} if isinstance(agent_override, dict) else None
        if not isinstance(agent_override, dict) or not isinstance(prompt, dict):
            raise FrameError("invalid", "`conversation_config_override.agent` must be an object.")
        overrides = {
            "prompt": _text(prompt, "prompt", required=False),
            "first_message": _text(agent_override, "first_message", required=False),
            "language": _text(agent_override, "language", required=False)[:16],
        }
        await self._start(
            {k: str(v) for k, v in variables.items()}, {k: v for k, v in overrides.items() if v}
        )

    async def on_user_message(self, frame):
        text = _text(frame)
        if self.ended:
            raise FrameError("conversation_ended", "This conversation has ended; open a new one.")
        if self.session is None:
            await self._start({}, {})
        await self.queue.put(text)

    async def on_contextual_update(self, frame):
        text = _text(frame)
        if self.session is None:
            await self._start({}, {})
        self.session.add_context(text)

    async def on_user_activity(self, frame):
        if self.session is not None:
            self.session.interrupt()

    async def on_pong(self, frame):
        if not isinstance(frame.get("event_id"), int):
            raise FrameError("invalid", "`event_id` must be the ping's integer id.")

    async def on_end_conversation(self, frame):
        if self.session is not None and not self.ended:
            self.ended = True
            self.session.interrupt()
            await self._flush()
            await database_sync_to_async(conversation_finish)(self.conversation)
        await self.emit({"type": "conversation_ended"})

    async def on_save_test_result(self, frame):
        rating, status = frame.get("rating"), frame.get("status", "passed")
        if not isinstance(rating, int) or isinstance(rating, bool) or not 1 <= rating <= 5:
            raise FrameError("invalid", "`rating` must be a whole number from 1 to 5.")
        if status not in TestResultStatus.values:
            raise FrameError("invalid", f"`status` must be one of {', '.join(TestResultStatus.values)}.")
        notes = _text(frame, "notes", required=False)
        if self.conversation is None:
            raise FrameError("invalid", "Talk to the agent before saving a result.")
        await self._flush()
        result = await database_sync_to_async(self._save_result)(rating, status, notes)
        await self.emit({"type": "test_result_saved", "id": str(result.pk)})

    def _save_result(self, rating, status, notes):
        return test_result_record(
            access=self.access,
            agent=self.obj,
            conversation_id=self.conversation.pk,
            duration=round(time.monotonic() - self.started, 3),
            transcript=transcript_of(self.conversation),
            rating=rating,
            notes=notes,
            status=status,
        )

    # --- the conversation -----------------------------------------------------------------
    async def _start(self, variables: dict, overrides: dict) -> None:
        def start():
            agent = Agent.objects.for_org(self.access.org).get(pk=self.obj.pk)
            conversation_guard(agent=agent, source=ConversationSource.CONSOLE)
            compiled = compile_working_copy(agent)
            policy = action_approval_policy(org_id=agent.org_id, stage_id=agent.stage_id)
            conversation = conversation_start(
                agent=agent,
                version=agent.version,
                draft=agent.has_unsaved_changes,
                source=ConversationSource.CONSOLE,
                started_by=self.access.user,
                variables=variables,
                overrides=overrides,
            )
            return conversation, compiled, policy

        self.conversation, compiled, policy = await database_sync_to_async(start)()
        self.started = time.monotonic()
        self.session = Session(
            conversation_id=str(self.conversation.pk),
            compiled=compiled,
            variables=variables,
            overrides=overrides,
            stream_delay=settings.CONSOLE_STREAM_DELAY_MS / 1000,
            approvals=ConsoleGate(self, policy["tools"], policy["timeout_seconds"])
            if policy["tools"]
            else None,
        )
        await self.emit(
            {
                "type": "conversation_initiation_metadata",
                "conversation_id": str(self.conversation.pk),
                "agent_id": str(self.obj.pk),
                "version": self.conversation.version,
                "draft": self.conversation.draft,
            }
        )
        first = self.session.first_message()
        if first:
            await self.emit(first)

    async def _answer_loop(self):
        while True:
            text = await self.queue.get()
            await self.emit({"type": "user_transcript", "text": text})
            try:
                async for frame in self.session.respond(text):
                    await self.emit(frame)
                self._hand_over()
            except Exception:
                logger.exception("the console's engine failed")
                await self.emit(
                    {"type": "error", "code": "engine_failed", "message": "The agent could not answer."}
                )

    def _hand_over(self) -> None:
        """Give finished turns to the writer (it batches all sockets together)."""
        if self.session is not None and self.session.pending:
            # The state is rewritten only when it changed: most turns leave it alone.
            state = self.session.state
            changed = state != self.state_written
            if changed:
                self.state_written = copy.deepcopy(state)
            recorder().add(self.conversation, self.session.take_pending(), state if changed else None)

    async def _flush(self) -> None:
        self._hand_over()
        await recorder().flush()

    async def _ping_loop(self):
        while True:
            await asyncio.sleep(settings.WS_PING_SECONDS)
            self.ping_id += 1
            await self.emit({"type": "ping", "event_id": self.ping_id})


CLIENT_TYPES = {
    "conversation_initiation_client_data",
    "user_message",
    "contextual_update",
    "user_activity",
    "pong",
    "end_conversation",
    "save_test_result",
}
