"""Releases: the only way an agent's live version changes.

`release_create` is what a manager of the agent's stage asks for (the API's and the UI's
*Make live* and *Start a release*): `direct` makes a saved version live at once;
`canary`, `blue_green` and `manual` start a progressive release whose transitions live in
release_progress (advance, pause, resume, rollback), release_smoke (blue-green's smoke
test) and release_analysis (the beat's verdicts).
`release_on_version_written` is registered on agents' VERSION_WRITTEN hook: in a stage
whose policy does not require releases every new version goes live at once, recorded as
a `direct` release by whoever made the version; in one that does, nothing happens and
the version waits for a release.

The agent's row is locked (select_for_update) while its live version moves, so two
releases of one agent never interleave, and at most one release per agent is active
(a partial unique constraint).
"""

from __future__ import annotations

import dataclasses
import logging

from django.db import IntegrityError, transaction
from django.utils import timezone

from agents.models import Agent, AgentVersion
from lifecycle.access import Access
from lifecycle.audit import audit_record
from lifecycle.errors import Conflict, Forbidden, Invalid
from lifecycle.operations import (
    Operation,
    OperationStatus,
    operation_finish,
    operation_handler,
    operation_start,
)

from ..decision import approval_open, change_decide, change_recheck, decision_record
from ..events import agent_event
from ..models import ACTIVE_RELEASE_STATUSES, Release, ReleaseStatus, ReleaseStrategy
from ..policy import releases_required
from ..release_config import release_config
from ..traffic import routing_changed

logger = logging.getLogger(__name__)

KIND = "agent.release"
# Strategies that compare a candidate with a stable version already live.
NEEDS_STABLE = (ReleaseStrategy.CANARY, ReleaseStrategy.BLUE_GREEN)


def active_release(agent: Agent) -> Release | None:
    return (
        Release.objects.for_org(agent.org_id).filter(agent=agent, status__in=ACTIVE_RELEASE_STATUSES).first()
    )


def active_release_summaries(agents) -> dict:
    """{agent id: summary} of the agents' active releases, in one query (agents' hook)."""
    ids = [agent.pk for agent in agents]
    if not ids:
        return {}
    org_id = agents[0].org_id
    rows = Release.objects.for_org(org_id).filter(agent_id__in=ids, status__in=ACTIVE_RELEASE_STATUSES)
    return {
        row.agent_id: {
            "id": str(row.pk),
            "status": row.status,
            "strategy": row.strategy,
            "stable_version": row.stable_version,
            "candidate_version": row.candidate_version,
            "weight": row.weight,
        }
        for row in rows
    }


def _validate(agent: Agent, *, version, strategy: str, changelog) -> str:
    """400s for what the request itself gets wrong; returns the trimmed changelog."""
    fields: dict[str, list[str]] = {}
    if strategy not in ReleaseStrategy.values:
        fields["strategy"] = [f"Choose one of: {', '.join(ReleaseStrategy.values)}."]
    changelog = changelog.strip() if isinstance(changelog, str) else ""
    if not changelog:
        fields["changelog"] = ["Say what this release changes for live users."]
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        fields["version"] = ["Give the number of a saved version of this agent."]
    elif not AgentVersion.objects.for_org(agent.org_id).filter(agent=agent, number=version).exists():
        fields["version"] = [f"This agent has no version {version}."]
    elif strategy != ReleaseStrategy.DIRECT and version == agent.live_version:
        fields["version"] = [f"Version {version} is already live."]
    if fields:
        raise Invalid(fields=fields)
    return changelog


def release_create(
    *,
    access: Access,
    agent: Agent,
    version: int,
    changelog: str,
    strategy: str = ReleaseStrategy.DIRECT,
    override_freeze: dict | None = None,
    steps: list | None = None,
    analysis: dict | None = None,
    keep_warm: str | None = None,
    smoke: dict | None = None,
) -> Release | Operation:
    """Make a saved version of `agent` live: a Release, or an operation awaiting approval.

    Checks, in API.md's order: 403 unless the caller manages the agent's stage; 400 for
    bad input (a missing version, a blank changelog, bad steps or thresholds); 409 for an
    archived agent, one with an active release, or a canary with nothing live to compare
    with; the stage's decision (423 frozen, 409 gate_failed); then approvals (an
    operation `awaiting_approval`, which starts the release once approved).
    """
    if not access.has_stage_role(agent.stage_id, "manager"):
        raise Forbidden(f"Releasing in {agent.stage.name} needs the manager role there.")
    changelog = _validate(agent, version=version, strategy=strategy, changelog=changelog)
    plan = None
    if strategy != ReleaseStrategy.DIRECT:
        plan = release_config(
            agent=agent, strategy=strategy, steps=steps, analysis=analysis, keep_warm=keep_warm, smoke=smoke
        )
    elif any(given is not None for given in (steps, analysis, keep_warm, smoke)):
        raise Invalid(
            fields={"strategy": ["A direct release has no steps, analysis, keep_warm or smoke test."]}
        )
    if agent.archived:
        raise Conflict("An archived agent serves no live traffic.")
    if strategy in NEEDS_STABLE and agent.live_version is None:
        raise Conflict(
            f"A {strategy} release compares the candidate with the live version, and nothing is live: "
            "make a first version live with a direct or manual release."
        )
    if active_release(agent) is not None:
        raise Conflict("This agent already has a release in progress.")
    decision = change_decide(
        access=access, kind="release", agent=agent, target_stage=agent.stage, override_freeze=override_freeze
    )
    decision.raise_for_blockers()
    if strategy == ReleaseStrategy.MANUAL and not decision.approvals_required:
        # A manual release is a person's approval, then 100 %: at least one, even where
        # the stage's policy asks for none.
        decision = dataclasses.replace(decision, approvals_required=1)
    with transaction.atomic():
        decision_record(access=access, decision=decision, target=agent)
        if decision.approvals_required:
            operation = operation_start(
                org=access.org,
                actor=access.user,
                kind=KIND,
                params={
                    "agent": str(agent.pk),
                    "version": version,
                    "strategy": strategy,
                    "changelog": changelog,
                    "override_freeze": override_freeze,
                    "decision": decision.to_json(),
                    "plan": list(plan) if plan else None,
                },
                stage=agent.stage,
                target=agent,
                exclusive_key=f"release:{agent.pk}",
                status=OperationStatus.AWAITING_APPROVAL,
                conflict_message="A release of this agent is already waiting for approval.",
            )
            approval_open(
                access=access,
                operation=operation,
                kind="release",
                agent=agent,
                source_agent=None,
                target_stage=agent.stage,
                decision=decision,
                reason=changelog,
            )
            audit_record(
                org=access.org,
                actor=access.user,
                action="release.requested",
                target=agent,
                changes={
                    "version": version,
                    "strategy": strategy,
                    "operation": str(operation.pk),
                    "decision": decision.to_json(),
                },
            )
            return operation
        if strategy == ReleaseStrategy.DIRECT:
            return _release_direct(
                actor=access.user,
                agent=agent,
                version=version,
                changelog=changelog,
                decision=decision.to_json(),
            )
        return _release_begin(
            actor=access.user,
            agent=agent,
            version=version,
            changelog=changelog,
            strategy=strategy,
            plan=plan,
            decision=decision.to_json(),
        )


def _release_begin(
    *, actor, agent: Agent, version: int, changelog: str, strategy: str, plan, decision: dict | None
) -> Release:
    """Record a progressive release with the agent's row locked, and start it by strategy:
    a canary takes its first step's traffic now, a blue-green release runs its smoke test
    first, a manual one waits for another manager's approval. Call inside a transaction."""
    from .release_progress import release_event, release_step_forward
    from .release_smoke import KIND as SMOKE

    steps, config = plan
    locked = Agent.objects.for_org(agent.org_id).select_for_update().get(pk=agent.pk)
    if locked.live_version is None and strategy in NEEDS_STABLE:
        raise Conflict("Nothing is live to compare the candidate with.")
    status = {
        ReleaseStrategy.CANARY: ReleaseStatus.PROGRESSING,
        ReleaseStrategy.BLUE_GREEN: ReleaseStatus.SMOKE_TESTING,
        # Only ever begun once approved (release_run): straight to its one step, 100 %.
        ReleaseStrategy.MANUAL: ReleaseStatus.PROGRESSING,
    }[strategy]
    try:
        with transaction.atomic():  # a savepoint: a rival active release is a clean 409
            release = Release.objects.create(
                org_id=agent.org_id,
                agent=locked,
                status=status,
                strategy=strategy,
                stable_version=locked.live_version,
                candidate_version=version,
                weight=0,
                step=0,
                steps=steps,
                config=config,
                changelog=changelog[:10000],
                created_by=actor if getattr(actor, "is_authenticated", False) else None,
            )
    except IntegrityError as exc:
        raise Conflict("This agent already has a release in progress.") from exc
    release.agent, release.org = locked, agent.org
    audit_record(
        org=agent.org,
        actor=actor,
        action="release.created",
        target=agent,
        changes={
            "release": str(release.pk),
            "strategy": strategy,
            "stable_version": release.stable_version,
            "candidate_version": version,
            "steps": steps,
            "changelog": changelog[:500],
            **({"decision": decision} if decision is not None else {}),
        },
    )
    release_event(
        release, "release.started", reason=f"{strategy} release of version {version} started.", actor=actor
    )
    if strategy == ReleaseStrategy.CANARY:
        release.step = -1
        release_step_forward(release, actor=actor, reason="First step.")
    elif strategy == ReleaseStrategy.MANUAL:
        release.step = -1
        release_step_forward(release, actor=actor, reason="Approved.")
    elif strategy == ReleaseStrategy.BLUE_GREEN:
        release.operation = operation_start(
            org=agent.org,
            actor=actor,
            kind=SMOKE,
            params={"release": str(release.pk), "agent": str(agent.pk)},
            stage=agent.stage,
            target=agent,
        )
        release.save(update_fields=["operation"])
    routing_changed(agent.pk)
    return release


def _release_direct(
    *, actor, agent: Agent, version: int, changelog: str, decision: dict | None = None, automatic: str = ""
) -> Release:
    """Record a direct release and move the live version, with the agent's row locked.

    Call inside a transaction. `automatic` names the version write that caused it (save,
    pull, …) when no one asked for the release itself.
    """
    locked = Agent.objects.for_org(agent.org_id).select_for_update().get(pk=agent.pk)
    now = timezone.now()
    try:
        with transaction.atomic():  # a savepoint: a rival active release is a clean 409
            release = Release.objects.create(
                org_id=agent.org_id,
                agent=locked,
                status=ReleaseStatus.SUCCEEDED,
                strategy=ReleaseStrategy.DIRECT,
                stable_version=locked.live_version,
                candidate_version=version,
                weight=100,
                step=0,
                steps=[{"weight": 100}],
                changelog=changelog[:10000],
                created_by=actor if getattr(actor, "is_authenticated", False) else None,
                finished_at=now,
                reason=f"New version ({automatic}) in a stage without required releases."
                if automatic
                else "",
            )
    except IntegrityError as exc:
        raise Conflict("This agent already has a release in progress.") from exc
    Agent.objects.for_org(agent.org_id).filter(pk=agent.pk).update(live_version=version)
    agent.live_version = version
    changes = {
        "release": str(release.pk),
        "strategy": ReleaseStrategy.DIRECT,
        "stable_version": release.stable_version,
        "candidate_version": version,
        "changelog": changelog[:500],
    }
    if automatic:
        changes["automatic"] = automatic
    if decision is not None:
        changes["decision"] = decision
    for action in ("release.created", "release.succeeded"):
        audit_record(org=agent.org, actor=actor, action=action, target=agent, changes=changes)
    # A direct release starts and succeeds at once; both are told, as a gradual one will.
    about = {
        "release": str(release.pk),
        "strategy": ReleaseStrategy.DIRECT,
        "stable_version": release.stable_version,
        "version": version,
        "automatic": automatic,
    }
    for event in ("release.started", "release.succeeded"):
        agent_event(event, locked, actor=actor, **about)
    release.agent = locked
    locked.live_version = version
    routing_changed(agent.pk)
    return release


@operation_handler(KIND)
def release_run(operation: Operation) -> dict:
    """A release that waited for approval: ask the stage again, then start it."""
    params = operation.params
    agent = Agent.objects.for_org(operation.org_id).select_related("stage", "org").get(pk=params["agent"])
    if agent.archived:
        raise Conflict("The agent was archived meanwhile.")
    change_recheck(operation=operation, kind="release", agent=agent, target_stage=agent.stage, target=agent)
    strategy = params.get("strategy") or ReleaseStrategy.DIRECT
    with transaction.atomic():
        if strategy == ReleaseStrategy.DIRECT:
            release = _release_direct(
                actor=operation.requested_by,
                agent=agent,
                version=params["version"],
                changelog=params["changelog"],
                decision=params.get("decision"),
            )
        else:
            release = _release_begin(
                actor=operation.requested_by,
                agent=agent,
                version=params["version"],
                changelog=params["changelog"],
                strategy=strategy,
                plan=params["plan"],
                decision=params.get("decision"),
            )
        result = {"release": str(release.pk), "live_version": release.agent.live_version}
        # Finished in the release's own transaction: a second delivery finds it done.
        operation_finish(operation, result=result)
    return result


def release_on_version_written(*, actor, agent: Agent, version: AgentVersion) -> None:
    """agents' VERSION_WRITTEN hook: a new version goes live at once unless the stage
    requires releases. Runs inside version_write's transaction."""
    if releases_required(agent.stage):
        return
    if active_release(agent) is not None:
        # A release in progress owns the traffic; the new version waits for the next one.
        logger.info("agent %s: version %s not made live, a release is active", agent.pk, version.number)
        return
    _release_direct(
        actor=actor,
        agent=agent,
        version=version.number,
        changelog=version.changelog or f"Version {version.number}",
        automatic=version.reason,
    )
