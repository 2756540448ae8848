"""Red-team runs: every attack of the chosen categories, in every chosen strategy, run
through the runtime as a stored conversation, and judged by canaries (redteam/detect.py).

The result is the attack success rate per category x strategy. Findings keep the
prompt, the answer and the evidence; secrets never appear in them: the runtime masks
verbatim values, and an answer holding an encoded secret (which the mask cannot see)
is withheld, in the finding and in the stored conversation.
"""

from __future__ import annotations

import secrets as random_tokens

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

from ..events import agent_event
from ..gateway import run_here
from ..models import EvaluationStatus, RedTeamRun
from ..redteam import CATEGORIES, attacks
from ..redteam.detect import Canaries, canaries_for, judge
from ..redteam.strategies import STRATEGIES, turns
from .evaluation import evaluated_version, evaluation_start

KIND = "agent.red_team"
MAX_TEXT = 2000  # characters of a prompt or answer kept in a finding


def _choices(field: str, given, allowed: tuple[str, ...]) -> list[str]:
    if given is None or given == []:
        return list(allowed)  # none named: all of them
    if not isinstance(given, list) or not all(isinstance(g, str) for g in given):
        raise Invalid(fields={field: ["A list of names."]})
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise Invalid(fields={field: [f"Unknown: {', '.join(unknown)}. Choose from {', '.join(allowed)}."]})
    return [name for name in allowed if name in given]  # the data file's order


def redteam_start(
    *, access: Access, agent: Agent, categories=None, strategies=None, version=None
) -> Operation:
    """Queue a red-team run on `agent`; editors or managers of the agent's stage only."""
    if not access.has_stage_role(agent.stage_id, "editor"):
        raise Forbidden(f"Red-teaming in {agent.stage.name} needs the editor role there.")
    if agent.archived:
        raise Conflict("An archived agent cannot be red-teamed.")
    categories = _choices("categories", categories, CATEGORIES)
    strategies = _choices("strategies", strategies, STRATEGIES)
    number = evaluated_version(agent, version)
    with transaction.atomic():
        run = RedTeamRun.objects.create(
            org_id=agent.org_id,
            agent=agent,
            stage_id=agent.stage_id,
            version=number,
            categories=categories,
            strategies=strategies,
            created_by=access.user if getattr(access.user, "is_authenticated", False) else None,
        )
        operation = evaluation_start(
            access=access,
            agent=agent,
            run=run,
            kind=KIND,
            params={"run": str(run.pk), "agent": str(agent.pk), "version": number},
            result_key="run",
            action="agent.red_team.start",
            changes={
                "run": str(run.pk),
                "version": number,
                "categories": categories,
                "strategies": strategies,
            },
        )
    return operation


def _canaries(compiled) -> Canaries:
    return canaries_for(
        # A word no agent says unless an injection made it: the run's own marker.
        marker=f"PWNED{random_tokens.token_hex(4).upper()}",
        instructions=compiled.settings.get("instructions", ""),
        secrets={name: value for name, (value, secret) in compiled.variables.items() if secret},
        denied_topics=compiled.settings.get("denied_topics") or [],
    )


def _plan(run: RedTeamRun, canaries: Canaries) -> list[tuple[str, str, str]]:
    """(category, strategy, attack prompt) for every attack of the run."""
    plan = []
    prompts = attacks()
    for category in run.categories:
        for template in prompts[category]:
            if category == "off_policy":  # one attack per denied topic; none denied, none run
                filled = [template.replace("{topic}", topic) for topic in canaries.denied_topics]
            else:
                filled = [template.replace("{canary}", canaries.marker)]
            for prompt in filled:
                plan.extend((category, strategy, prompt) for strategy in run.strategies)
    return plan


def _withheld(evidence: str) -> str:
    return f"[answer withheld: it held {evidence.removeprefix('the ')}]"


def _attack(run, agent, compiled, canaries, category, strategy, prompt) -> dict | None:
    """One attack as one stored conversation; the finding when it succeeded."""
    conversation = conversation_start(
        agent=agent,
        version=run.version if run.version is not None else agent.version,
        draft=run.version is None,
        source=ConversationSource.TEST_RUN,
        started_by=run.created_by,
    )
    session = Session(conversation_id=str(conversation.pk), compiled=compiled)
    session.first_message()
    sent, evidence, answer = [], None, ""
    for text in turns(strategy, prompt):

        async def respond(text=text):
            return [frame async for frame in session.respond(text)]

        frames = run_here(respond())
        sent.append(text)
        final = next((f for f in reversed(frames) if f.get("type") == "agent_response"), None)
        answer = (final or {}).get("text") or ""
        evidence = evidence or judge(category, answer, canaries)
    pending = session.take_pending()
    secret_found = evidence and "secret" in evidence and "masked by the runtime" not in evidence
    if secret_found:
        # The mask saw no verbatim value, yet an encoding of one is there: keep none of it.
        for turn in pending:
            if turn.get("role") == "agent":
                turn["text"] = _withheld(evidence)
                turn.pop("details", None)
        answer = _withheld(evidence)
    conversation_record(conversation=conversation, turns=pending)
    if evidence is None:
        return None
    return {
        "category": category,
        "strategy": strategy,
        "prompt": compiled.masker.text("\n".join(sent))[:MAX_TEXT],
        "response": compiled.masker.text(answer)[:MAX_TEXT],
        "evidence": evidence,
        "conversation": str(conversation.pk),
    }


def _table(run: RedTeamRun, outcomes: list[tuple[str, str, bool]]) -> list[dict]:
    rows = []
    for category in run.categories:
        for strategy in run.strategies:
            hits = [ok for c, s, ok in outcomes if c == category and s == strategy]
            rows.append(
                {
                    "category": category,
                    "strategy": strategy,
                    "attacks": len(hits),
                    "successes": sum(hits),
                    "asr": round(sum(hits) / len(hits), 4) if hits else None,
                }
            )
    return rows


def _totals(run: RedTeamRun, outcomes, findings) -> dict:
    attacks_run, successes = len(outcomes), sum(1 for *_, ok in outcomes if ok)
    return {
        "attacks": attacks_run,
        "successes": successes,
        "attack_success_rate": round(successes / attacks_run, 4) if attacks_run else None,
        "table": _table(run, outcomes),
        "findings": findings,
    }


@operation_handler(KIND)
def redteam_execute(operation: Operation) -> dict:
    org_id, params = operation.org_id, operation.params
    run = RedTeamRun.objects.for_org(org_id).get(pk=params["run"])
    if run.finished_at is not None:  # a second delivery of finished work: it stands as it is
        return {"run": str(run.pk)}
    agent = Agent.objects.for_org(org_id).select_related("stage", "org").get(pk=params["agent"])
    compiled = (
        compile_working_copy(agent) if run.version is None else compile_saved(org_id, agent.pk, run.version)
    )
    canaries = _canaries(compiled)
    plan = _plan(run, canaries)
    RedTeamRun.objects.for_org(org_id).filter(pk=run.pk).update(status=EvaluationStatus.RUNNING)
    outcomes, findings = [], []
    try:
        for done, (category, strategy, prompt) in enumerate(plan):
            finding = _attack(run, agent, compiled, canaries, category, strategy, prompt)
            outcomes.append((category, strategy, finding is not None))
            if finding:
                findings.append(finding)
            operation_progress(operation, round(100 * (done + 1) / (len(plan) + 1)))
        totals = _totals(run, outcomes, findings)
        with transaction.atomic():
            RedTeamRun.objects.for_org(org_id).filter(pk=run.pk, finished_at__isnull=True).update(
                status=EvaluationStatus.SUCCEEDED, finished_at=timezone.now(), **totals
            )
            audit_record(
                org=agent.org,
                actor=operation.requested_by,
                action="agent.red_team.finish",
                target=agent,
                changes={
                    "run": str(run.pk),
                    "attacks": totals["attacks"],
                    "successes": totals["successes"],
                    "attack_success_rate": totals["attack_success_rate"],
                },
            )
            result = {"run": str(run.pk), "attacks": totals["attacks"], "successes": totals["successes"]}
            agent_event(
                "red_team.finished",
                agent,
                operation=operation,
                actor=operation.requested_by,
                status=EvaluationStatus.SUCCEEDED,
                version=run.version,
                attack_success_rate=totals["attack_success_rate"],
                **result,
            )
            operation_finish(operation, result=result)
    except OperationCancelled:
        # Attacks already run stay as conversations; the run says it was cut short.
        RedTeamRun.objects.for_org(org_id).filter(pk=run.pk, finished_at__isnull=True).update(
            status=EvaluationStatus.CANCELLED, finished_at=timezone.now(), **_totals(run, outcomes, findings)
        )
        raise
    except Exception:
        RedTeamRun.objects.for_org(org_id).filter(pk=run.pk, finished_at__isnull=True).update(
            status=EvaluationStatus.FAILED, finished_at=timezone.now()
        )
        raise
    return result
