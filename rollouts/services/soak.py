"""Soak tests: drive an agent through the runtime many times and measure how it holds up.

An execution is one scripted conversation (a suite case's user turns, or one utterance
taken from the agent's skills) run by the same Session the console and the gateway use,
stored as a conversation with source `soak`. Executions run in waves of `concurrency`
on one event loop; between waves the handler writes the wave's conversations and
reaches a checkpoint, so a cancel request stops the soak within one wave (each
execution is bounded by its tools' timeouts).

The result: p50/p95/p99 of the executions' latency (wall time of the whole scripted
conversation, in ms), the error rate (an execution with any turn in error, or one that
raised), throughput, and drift: the p95 of the first tenth of executions against the
last tenth, which shows an agent or its tools slowing down over the run.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time

from django.db import transaction
from django.utils import timezone

from agents.models import Agent, Component, Conversation, ConversationSource
from agents.runtime.compile import compile_saved, compile_working_copy
from agents.runtime.session import Session
from agents.services.conversations import conversation_start, conversations_record
from lifecycle.access import Access
from lifecycle.audit import audit_record
from lifecycle.errors import Forbidden, Invalid
from lifecycle.operations import (
    Operation,
    OperationCancelled,
    operation_finish,
    operation_handler,
    operation_progress,
)

from ..events import agent_event
from ..models import EvaluationStatus, SoakTest, TestSuite
from ..policy import DURATION, duration_seconds
from .evaluation import evaluated_version, evaluation_start

logger = logging.getLogger(__name__)

KIND = "agent.soak"
MAX_EXECUTIONS = 10_000
MAX_CONCURRENCY = 16
MAX_DURATION_SECONDS = 24 * 3600
# With a duration the soak runs until time is up; this bounds it all the same.
DURATION_CAP_EXECUTIONS = 1_000_000
FALLBACK_SCRIPT = [["Hello"]]


def percentile(values: list[float], p: float) -> float | None:
    """The nearest-rank percentile: the smallest value with at least p % of the values at
    or below it (rank ceil(p/100 * n), 1-based). Always one of the measured values, so
    it never invents a latency between two executions. None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def soak_summary(latencies: list[float], errors: int, elapsed: float) -> dict:
    """The figures a soak records, from latencies in execution order (ms)."""
    n = len(latencies)
    tenth = max(1, n // 10)
    return {
        "executions": n,
        "errors": errors,
        "error_rate": round(errors / n, 6) if n else None,
        "latency_ms": {f"p{p}": percentile(latencies, p) for p in (50, 95, 99)},
        "throughput_per_s": round(n / elapsed, 3) if n and elapsed > 0 else None,
        "drift": {
            "p95_first_tenth_ms": percentile(latencies[:tenth], 95),
            "p95_last_tenth_ms": percentile(latencies[-tenth:], 95),
        },
    }


def _validate(executions, duration, concurrency) -> None:
    errors: dict[str, list[str]] = {}
    if executions is not None and (
        not isinstance(executions, int)
        or isinstance(executions, bool)
        or not 1 <= executions <= MAX_EXECUTIONS
    ):
        errors["executions"] = [f"A whole number from 1 to {MAX_EXECUTIONS}."]
    if (
        not isinstance(concurrency, int)
        or isinstance(concurrency, bool)
        or not 1 <= concurrency <= MAX_CONCURRENCY
    ):
        errors["concurrency"] = [f"A whole number from 1 to {MAX_CONCURRENCY}."]
    if duration is not None:
        if not isinstance(duration, str) or not DURATION.match(duration):
            errors["duration"] = ['A duration such as "90s", "10m", "2h" or "1d".']
        elif duration_seconds(duration) > MAX_DURATION_SECONDS:
            errors["duration"] = ["At most 24 hours."]
    if errors:
        raise Invalid(fields=errors)


def soak_start(
    *,
    access: Access,
    agent: Agent,
    executions: int | None = 100,
    duration: str | None = None,
    concurrency: int = 4,
    suite=None,
    version=None,
) -> Operation:
    """Check a soak request, record the soak and start it as an operation (202).

    It runs `executions` conversations, or for `duration`; given both, until the first.
    """
    if not access.can("change", agent):
        raise Forbidden("Running a soak test needs the editor role of the agent's stage.")
    if executions is None and duration is None:
        executions = 100
    _validate(executions, duration, concurrency)
    if suite is not None:
        suite = TestSuite.objects.for_org(access.org).filter(pk=getattr(suite, "pk", suite)).first()
        if suite is None or suite.lineage_id != agent.lineage_id:
            raise Invalid(fields={"suite": ["Not a test suite of this agent's lineage."]})
    number = evaluated_version(agent, version, draft_by_default=True)
    params = {
        "executions": executions,
        "duration": duration,
        "concurrency": concurrency,
        "suite": str(suite.pk) if suite else None,
    }
    with transaction.atomic():
        soak = SoakTest.objects.create(
            org=access.org,
            agent=agent,
            stage_id=agent.stage_id,
            version=number,
            params=params,
            created_by=access.user,
        )
        operation = evaluation_start(
            access=access,
            agent=agent,
            run=soak,
            kind=KIND,
            params={"soak": str(soak.pk), "agent": str(agent.pk)},
            result_key="soak",
            action="agent.soak.start",
            changes={**params, "version": number, "soak": str(soak.pk)},
        )
    return operation


def _script(soak: SoakTest, agent: Agent) -> list[list[str]]:
    """The conversations to cycle through: each a list of user turns."""
    suite_id = soak.params.get("suite")
    if suite_id:
        from ..models import TestCase

        cases = TestCase.objects.for_org(soak.org_id).filter(suite_id=suite_id).order_by("created_at", "pk")
        scripts = [[t["user"] for t in (case.turns or []) if t.get("user")] for case in cases]
        scripts = [s for s in scripts if s]
        return scripts or FALLBACK_SCRIPT
    specs = (
        Component.objects.for_org(soak.org_id)
        .filter(agent=agent, kind="skill")
        .order_by("name")
        .values_list("spec", flat=True)
    )
    # The first example utterance of each skill: what its users are expected to say.
    scripts = [[spec["utterances"][0]] for spec in specs if (spec or {}).get("utterances")]
    return scripts or FALLBACK_SCRIPT


async def _execute(compiled, conversation: Conversation, turns: list[str]) -> tuple[float, bool, list[dict]]:
    session = Session(conversation_id=str(conversation.pk), compiled=compiled)
    started = time.perf_counter()
    failed = False
    try:
        for text in turns:
            async for frame in session.respond(text):
                if frame.get("type") == "error":
                    failed = True
    except Exception:  # an engine that raised is an error of this execution, not of the soak
        logger.exception("soak execution failed")
        failed = True
    return (time.perf_counter() - started) * 1000, failed, session.take_pending()


def _wave(compiled, conversations, scripts) -> list[tuple[float, bool, list[dict]]]:
    async def run():
        return await asyncio.gather(
            *(_execute(compiled, c, s) for c, s in zip(conversations, scripts, strict=True))
        )

    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(run())
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def _save(soak: SoakTest, summary: dict, status: str) -> None:
    for field, value in summary.items():
        setattr(soak, field, value)
    soak.status = status
    soak.finished_at = timezone.now()
    soak.save(
        update_fields=[
            "executions",
            "errors",
            "error_rate",
            "latency_ms",
            "throughput_per_s",
            "drift",
            "status",
            "finished_at",
        ]
    )


@operation_handler(KIND)
def soak_run(operation: Operation) -> dict:
    org_id = operation.org_id
    soak = SoakTest.objects.for_org(org_id).get(pk=operation.params["soak"])
    agent = Agent.objects.for_org(org_id).get(pk=soak.agent_id)
    params = soak.params
    compiled = (
        compile_working_copy(agent) if soak.version is None else compile_saved(org_id, agent.pk, soak.version)
    )
    scripts = _script(soak, agent)
    deadline = time.monotonic() + duration_seconds(params["duration"]) if params.get("duration") else None
    # With both, whichever comes first ends the soak.
    target = params["executions"] or DURATION_CAP_EXECUTIONS
    concurrency = params["concurrency"]
    SoakTest.objects.for_org(org_id).filter(pk=soak.pk).update(status=EvaluationStatus.RUNNING)
    latencies: list[float] = []
    errors = 0
    started = time.perf_counter()
    try:
        while len(latencies) < target and (deadline is None or time.monotonic() < deadline):
            size = min(concurrency, target - len(latencies))
            batch = [scripts[(len(latencies) + i) % len(scripts)] for i in range(size)]
            conversations = [
                conversation_start(
                    agent=agent,
                    version=soak.version or agent.version,
                    draft=soak.version is None,
                    source=ConversationSource.SOAK,
                    end_user=f"soak:{soak.pk}",
                )
                for _ in batch
            ]
            results = _wave(compiled, conversations, batch)
            conversations_record(
                [(c, turns, None) for c, (_, _, turns) in zip(conversations, results, strict=True)]
            )
            for latency, failed, _ in results:
                latencies.append(round(latency, 3))
                errors += failed
            done = len(latencies) * 100 // target
            if deadline is not None:
                total = duration_seconds(params["duration"])
                done = max(done, int((1 - max(0.0, deadline - time.monotonic()) / total) * 100))
            # A checkpoint: renews the lease, and raises when a cancel was asked for.
            operation_progress(operation, min(99, done))
        summary = soak_summary(latencies, errors, time.perf_counter() - started)
        with transaction.atomic():
            _save(soak, summary, EvaluationStatus.SUCCEEDED)
            audit_record(
                org=agent.org,
                actor=operation.requested_by,
                action="agent.soak.finish",
                target=agent,
                changes={"soak": str(soak.pk), **summary},
            )
            agent_event(
                "soak.finished",
                agent,
                operation=operation,
                actor=operation.requested_by,
                status=EvaluationStatus.SUCCEEDED,
                soak=str(soak.pk),
                version=soak.version,
                **summary,
            )
            operation_finish(operation, result={"soak": str(soak.pk), **summary})
    except OperationCancelled:
        # What ran is kept as a cancelled soak (never read by the gate); the operation
        # then ends cancelled.
        _save(
            soak, soak_summary(latencies, errors, time.perf_counter() - started), EvaluationStatus.CANCELLED
        )
        raise
    except Exception:
        _save(soak, soak_summary(latencies, errors, time.perf_counter() - started), EvaluationStatus.FAILED)
        raise
    return {"soak": str(soak.pk), **summary}


def soak_status(soak: SoakTest) -> str:
    """The soak's status as readers see it. One whose operation ended before the handler
    ran it (cancelled while queued, or given up on) reads as that end: the handler that
    would have recorded it never ran."""
    if soak.finished_at is None and soak.operation_id is not None:
        ended = soak.operation.status
        if ended in (EvaluationStatus.CANCELLED, EvaluationStatus.FAILED):
            return ended
    return soak.status
