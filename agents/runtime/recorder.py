"""The console's turn writer: every open socket's turns, written together, off the
response path.

Each console session hands its finished turns here; one task per event loop writes all
of them in a single transaction every FLUSH_SECONDS. Saving a result, ending a
conversation or closing the socket flushes at once, so nothing is lost on the way out.
A batch that fails is written again row by row: a bad row loses only itself.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

from django.db import close_old_connections

from ..services.conversations import conversations_record

FLUSH_SECONDS = 0.25
logger = logging.getLogger(__name__)


class TurnRecorder:
    def __init__(self):
        self.buffer: dict = {}  # conversation id → [conversation, turns, state]
        self.task: asyncio.Task | None = None
        self.lock = asyncio.Lock()
        # Its own thread, not the shared one `database_sync_to_async` uses: Channels runs
        # every incoming frame through that thread, so a write there stalls every socket.
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="turn-writer")

    def add(self, conversation, turns: list[dict], state: dict | None) -> None:
        entry = self.buffer.setdefault(conversation.pk, [conversation, [], None])
        entry[1].extend(turns)
        if state is not None:  # None is "unchanged": keep a change not yet written
            entry[2] = state
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._drain())

    async def flush(self) -> None:
        async with self.lock:
            batch, self.buffer = self.buffer, {}
            if batch:
                rows = [tuple(v) for v in batch.values()]
                await asyncio.get_running_loop().run_in_executor(self.executor, _write, rows)

    async def _drain(self) -> None:
        while self.buffer:
            await asyncio.sleep(FLUSH_SECONDS)
            try:
                await self.flush()
            except Exception:
                # The batch is lost; say so loudly rather than kill the writer for
                # every other socket.
                logger.exception("writing console turns failed")


def _write(rows) -> None:
    close_old_connections()
    try:
        try:
            conversations_record(rows, totals=False)
        except Exception:
            # One bad row (text the database cannot store, a turn number already taken)
            # fails the whole batch: every open socket's turns, of every org. Write them
            # again one by one, so only the bad row is lost.
            logger.warning("a batch of console turns failed; writing them one by one", exc_info=True)
            _write_one_by_one(rows)
    finally:
        close_old_connections()


def _write_one_by_one(rows) -> None:
    for conversation, turns, state in rows:
        for turn in turns:
            try:
                conversations_record([(conversation, [turn], None)], totals=False)
            except Exception:
                logger.exception(
                    "dropped console turn %s of conversation %s (org %s)",
                    turn.get("index"),
                    conversation.pk,
                    conversation.org_id,
                )
        if state is not None:
            try:
                conversations_record([(conversation, [], state)], totals=False)
            except Exception:
                logger.exception(
                    "dropped the engine state of conversation %s (org %s)",
                    conversation.pk,
                    conversation.org_id,
                )


_recorders: dict = {}


def recorder() -> TurnRecorder:
    """The recorder of the running event loop (one per server process)."""
    loop = asyncio.get_running_loop()
    if loop not in _recorders:
        for old in _recorders.values():  # a new loop (tests run one per test): the old one is gone
            old.executor.shutdown(wait=False)
        _recorders.clear()
        _recorders[loop] = TurnRecorder()
    return _recorders[loop]
