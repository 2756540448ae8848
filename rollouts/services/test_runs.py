"""Test runs: a suite's cases through the runtime, against a saved version or the working copy.

`test_run_start` checks the request and records a queued run with its operation; the
handler plays each case as a stored conversation (source `test_run`), judges every turn
against its expectations (rollouts.expectations) and records the run's results. A run
is tied to the version it ran and never changes once finished.
"""

from __future__ import annotations

import math

from django.db import transaction
from django.utils import timezone

from agents.models import Agent, ConversationSource
from agents.runtime.compile import compile_saved, compile_working_copy
from agents.runtime.session import Session
from agents.services.conversations import conversation_record, conversation_start
from lifecycle.access import Access
from lifecycle.audit import audit_record
from lifecycle.errors import Conflict, Forbidden, Invalid
from lifecycle.operations import (
    Operation,
    OperationCancelled,
    operation_finish,
    operation_handler,
    operation_progress,
)

from ..evaluators import defect_rates, judge_case, score_case
from ..events import agent_event
from ..expectations import failures
from ..gateway import run_here
from ..models import EvaluationStatus, TestCase, TestRun, TestSuite
from .evaluation import evaluated_version, evaluation_start
from .judge import judge_settings_of

__test__ = False  # named test_*, but not a test module: pytest collects nothing here

KIND = "agent.test_run"


def test_run_start(*, access: Access, agent: Agent, suite: TestSuite, version=None) -> Operation:
    """Queue a run of `suite` on `agent`; editors or managers of the agent's stage only."""
    if not access.has_stage_role(agent.stage_id, "editor"):
        raise Forbidden(f"Running tests in {agent.stage.name} needs the editor role there.")
    if agent.archived:
        raise Conflict("An archived agent cannot run tests.")
    if suite.org_id != agent.org_id or suite.lineage_id != agent.lineage_id or suite.archived_at is not None:
        raise Invalid(fields={"suite": ["Choose a suite of this agent's lineage."]})
    number = evaluated_version(agent, version)
    if not TestCase.objects.for_org(agent.org_id).filter(suite=suite).exists():
        raise Invalid(fields={"suite": ["This suite has no cases yet."]})
    with transaction.atomic():
        run = TestRun.objects.create(
            org_id=agent.org_id,
            agent=agent,
            stage_id=agent.stage_id,
            version=number,
            suite=suite,
            created_by=access.user if getattr(access.user, "is_authenticated", False) else None,
        )
        operation = evaluation_start(
            access=access,
            agent=agent,
            run=run,
            kind=KIND,
            params={"run": str(run.pk), "agent": str(agent.pk), "suite": str(suite.pk), "version": number},
            result_key="run",
            action="agent.test_run.start",
            changes={"suite": str(suite.pk), "version": number, "run": str(run.pk)},
        )
    return operation


def _turn_result(turn: dict, frames: list[dict]) -> dict:
    """What the expectations read of one answered turn (the stored agent turn)."""
    details = turn.get("details") or {}
    calls = [
        {"tool": e.get("tool_name"), "arguments": e.get("parameters") or {}}
        for e in details.get("tools", [])
        if e.get("type") == "tool_call"
    ]
    return {
        "text": turn.get("text") or "",
        "intent": details.get("skill"),
        "tools": calls,
        "sources": [s.get("uid") for s in details.get("sources", []) if isinstance(s, dict)],
        "latency_ms": turn.get("latency_total_ms"),
        "error": bool(turn.get("error")),
    }


def turn_play(session, text: str) -> tuple[dict, dict, list[dict]]:
    """Answer one user turn through the runtime: (what expectations read, the stored agent
    turn, the turn's pending rows). Test runs and the blue-green smoke test both play this way."""

    async def answer():
        return [frame async for frame in session.respond(text)]

    frames = run_here(answer())
    pending = session.take_pending()
    agent_turn = next((t for t in reversed(pending) if t.get("role") == "agent"), {})
    return _turn_result(agent_turn, frames), agent_turn, pending


def _play(run: TestRun, agent: Agent, case: TestCase, compiled, knowledge: dict, judge=None) -> dict:
    """One case as one stored conversation: every user turn answered and judged."""
    conversation = conversation_start(
        agent=agent,
        version=run.version if run.version is not None else agent.version,
        draft=run.version is None,
        source=ConversationSource.TEST_RUN,
        started_by=run.created_by,
        variables=case.variables,
    )
    session = Session(conversation_id=str(conversation.pk), compiled=compiled, variables=case.variables)
    session.first_message()
    reasons, latency, played = [], 0, []
    for number, turn in enumerate(case.turns):
        result, agent_turn, pending = turn_play(session, turn["user"])
        latency += result["latency_ms"] or 0
        reasons += failures(number, turn.get("expect", []), result)
        details = agent_turn.get("details") or {}
        played.append(
            {
                "user": turn["user"],
                "answer": result["text"],
                "sources": details.get("sources", []),
                "skill": result["intent"],
                "tool_calls": result["tools"],
                "fallback": bool(details.get("fallback")),
                "error": result["error"],
            }
        )
        # Turns written as they happen: the conversation reads like any console one.
        session.pending = pending
        conversation_record(conversation=conversation, turns=session.take_pending())
    return {
        "case": str(case.pk),
        "name": case.name,
        "passed": not reasons,
        "reasons": reasons,
        "conversation": str(conversation.pk),
        "latency_ms": latency,
        "scores": score_case(played, case.turns, knowledge),
        # The org's LLM judge, if configured: beside the deterministic scores, never instead.
        "judge": judge_case(judge, played, knowledge),
        "answers": [t["answer"] for t in played],
    }


@operation_handler(KIND)
def test_run_execute(operation: Operation) -> dict:
    org_id, params = operation.org_id, operation.params
    run = TestRun.objects.for_org(org_id).get(pk=params["run"])
    if run.finished_at is not None:  # a second delivery of finished work: it stands as it is
        return {"run": str(run.pk)}
    agent = Agent.objects.for_org(org_id).select_related("stage").get(pk=params["agent"])
    compiled = (
        compile_working_copy(agent) if run.version is None else compile_saved(org_id, agent.pk, run.version)
    )
    cases = list(TestCase.objects.for_org(org_id).filter(suite_id=run.suite_id))
    knowledge = {doc.key: doc.text for doc in compiled.knowledge.documents}
    judge = judge_settings_of(org_id)
    TestRun.objects.for_org(org_id).filter(pk=run.pk).update(status=EvaluationStatus.RUNNING)
    results = []
    try:
        for done, case in enumerate(cases):
            results.append(_play(run, agent, case, compiled, knowledge, judge))
            operation_progress(operation, round(100 * (done + 1) / (len(cases) + 1)))
    except OperationCancelled:
        _cancelled(org_id, run, results)
        raise
    passed = sum(1 for r in results if r["passed"])
    # Safety is judged on every answer; the answers themselves stay in the conversations.
    safety = defect_rates([answer for r in results for answer in r.pop("answers")])
    try:
        with transaction.atomic():
            TestRun.objects.for_org(org_id).filter(pk=run.pk, finished_at__isnull=True).update(
                status=EvaluationStatus.SUCCEEDED,
                cases=results,
                passed=passed,
                failed=len(results) - passed,
                accuracy=round(passed / len(results), 4) if results else None,
                scores={
                    **_mean_scores([r["scores"] for r in results]),
                    "latency_ms": _percentiles([r["latency_ms"] for r in results]),
                    "judge": _judge_totals([r["judge"] for r in results if r.get("judge")]),
                },
                safety=safety,
                finished_at=timezone.now(),
            )
            audit_record(
                org=agent.org,
                actor=operation.requested_by,
                action="agent.test_run.finish",
                target=agent,
                changes={"run": str(run.pk), "passed": passed, "failed": len(results) - passed},
            )
            result = {"run": str(run.pk), "passed": passed, "failed": len(results) - passed}
            agent_event(
                "test_run.finished",
                agent,
                operation=operation,
                actor=operation.requested_by,
                status=EvaluationStatus.SUCCEEDED,
                suite=str(run.suite_id),
                version=run.version,
                accuracy=round(passed / len(results), 4) if results else None,
                **result,
            )
            operation_finish(operation, result=result)
    except OperationCancelled:  # asked for just as it finished: the results are rolled back
        _cancelled(org_id, run, results)
        raise
    return result


def run_status(run: TestRun) -> str:
    """The run's status as readers see it. A run whose operation ended without it running
    to its end (cancelled while still queued, or the worker failed) reads as that end:
    the handler that would have recorded it never ran, or never got that far."""
    if run.finished_at is None and run.operation_id is not None:
        ended = run.operation.status
        if ended in (EvaluationStatus.CANCELLED, EvaluationStatus.FAILED):
            return ended
    return run.status


def _cancelled(org_id, run: TestRun, results: list[dict]) -> None:
    # Cases already played stay as conversations; the run says it was cut short.
    for result in results:
        result.pop("answers", None)
    TestRun.objects.for_org(org_id).filter(pk=run.pk, finished_at__isnull=True).update(
        status=EvaluationStatus.CANCELLED, cases=results, finished_at=timezone.now()
    )


def _mean_scores(per_case: list[dict]) -> dict:
    """Each scorer's mean over the cases it applies to (None where it applied to none)."""
    means = {}
    for name in ("relevance", "groundedness", "intent_resolution", "tool_call_accuracy"):
        values = [s[name] for s in per_case if s.get(name) is not None]
        means[name] = round(sum(values) / len(values), 4) if values else None
    return means


def _judge_totals(per_case: list[dict]) -> dict | None:
    """The run's judge view: mean scores over judged turns and, when the judge named unsafe
    categories, its defect rate per category (beside the detectors' `safety`, not in it)."""
    if not per_case:
        return None
    turns = sum(j["turns"] for j in per_case)
    totals = {
        "model": per_case[0]["model"],
        "turns": turns,
        "relevance": round(sum(j["relevance"] * j["turns"] for j in per_case) / turns, 4),
        "groundedness": round(sum(j["groundedness"] * j["turns"] for j in per_case) / turns, 4),
    }
    flagged = [j for j in per_case if "unsafe" in j]
    if flagged:
        seen = sum(j["unsafe_turns"] for j in flagged)
        totals["safety"] = {
            category: round(sum(j["unsafe"][category] for j in flagged) / seen, 4)
            for category in flagged[0]["unsafe"]
        }
    return totals


def _percentiles(values: list[int]) -> dict:
    ordered = sorted(values)
    if not ordered:
        return {"p50": None, "p95": None}

    def at(q: float) -> int:  # nearest rank
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)]

    return {"p50": at(0.5), "p95": at(0.95)}
