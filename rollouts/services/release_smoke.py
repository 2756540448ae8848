"""A blue-green release's smoke test: the candidate, through the runtime, before any traffic.

The cases (a suite of the lineage, or the turns given with the release) are played as
stored conversations (source `test_run`) against the candidate version. Every turn must
answer without an error and meet its expectations; one failure aborts the release with
the reasons, and no live conversation ever reaches the candidate.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from agents.models import Agent, ConversationSource
from agents.runtime.compile import compile_saved
from agents.runtime.session import Session
from agents.services.conversations import conversation_record, conversation_start
from lifecycle.operations import Operation, operation_finish, operation_handler

from ..expectations import failures
from ..models import Release, ReleaseStatus, TestCase
from .release_progress import release_step_forward, release_undo
from .test_runs import turn_play

KIND = "agent.release_smoke"
MAX_CASES = 50


def _cases(release: Release) -> list[tuple[str, dict, list[dict]]]:
    """(name, variables, turns) of each smoke case."""
    smoke = release.config.get("smoke") or {}
    if "suite" in smoke:
        return [
            (case.name, case.variables, case.turns)
            for case in TestCase.objects.for_org(release.org_id).filter(suite_id=smoke["suite"])[:MAX_CASES]
        ]
    return [("smoke", {}, smoke.get("turns") or [])]


def _play(
    release: Release, agent: Agent, compiled, name: str, variables: dict, turns: list[dict]
) -> list[dict]:
    conversation = conversation_start(
        agent=agent,
        version=release.candidate_version,
        draft=False,
        source=ConversationSource.TEST_RUN,
        started_by=release.created_by,
        variables=variables,
    )
    session = Session(conversation_id=str(conversation.pk), compiled=compiled, variables=variables)
    session.first_message()
    reasons = []
    for number, turn in enumerate(turns):
        result, agent_turn, pending = turn_play(session, turn["user"])
        if result["error"] or agent_turn.get("error"):
            reasons.append({"case": name, "turn": number, "type": "error", "got": agent_turn.get("error")})
        elif not result["text"].strip():
            reasons.append({"case": name, "turn": number, "type": "answer", "got": "no answer"})
        reasons += [{"case": name, **r} for r in failures(number, turn.get("expect", []), result)]
        session.pending = pending
        conversation_record(conversation=conversation, turns=session.take_pending())
    return reasons


@operation_handler(KIND)
def release_smoke_run(operation: Operation) -> dict:
    org_id = operation.org_id
    release = Release.objects.for_org(org_id).select_related("created_by").get(pk=operation.params["release"])
    if release.status != ReleaseStatus.SMOKE_TESTING:
        return {"release": str(release.pk), "status": release.status}  # rolled back meanwhile
    agent = Agent.objects.for_org(org_id).select_related("stage").get(pk=release.agent_id)
    compiled = compile_saved(org_id, agent.pk, release.candidate_version)
    reasons, cases = [], _cases(release)
    for name, variables, turns in cases:
        reasons += _play(release, agent, compiled, name, variables, turns)
    with transaction.atomic():
        locked = (
            Release.objects.for_org(org_id)
            .select_related("agent", "agent__stage", "org")
            .select_for_update(of=("self",))
            .get(pk=release.pk)
        )
        result = {
            "release": str(release.pk),
            "cases": len(cases),
            "passed": not reasons,
            "failures": reasons[:20],
        }
        if locked.status == ReleaseStatus.SMOKE_TESTING:
            locked.config["smoke"] = {
                **locked.config.get("smoke", {}),
                "result": result,
                "at": timezone.now().isoformat(),
            }
            if reasons:
                first = reasons[0]
                release_undo(
                    locked,
                    actor=None,
                    reason=f"Smoke test failed ({len(reasons)} failure(s)); first: case {first['case']}, "
                    f"turn {first['turn']}, {first['type']}.",
                )
            else:
                locked.status = ReleaseStatus.PROGRESSING
                locked.step = -1
                release_step_forward(locked, actor=None, reason=f"Smoke test passed ({len(cases)} case(s)).")
        result["status"] = locked.status
        operation_finish(operation, result=result)
    return result
