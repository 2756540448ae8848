"""Releases: the only way an agent's live version changes.

`release_create` is what a manager of the agent's stage asks for (the API's and the UI's
*Make live*): for now the `direct` strategy, which makes a saved version live at once.
`release_on_version_written` is registered on agents' VERSION_WRITTEN hook: in a stage
whose policy does not require releases every new version goes live at once, recorded as
a `direct` release by whoever made the version; in one that does, nothing happens and
the version waits for a release.

The agent's row is locked (select_for_update) while its live version moves, so two
releases of one agent never interleave, and at most one release per agent is active
(a partial unique constraint).
"""

from __future__ import annotations

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

logger = logging.getLogger(__name__)

KIND = "agent.release"
AVAILABLE_STRATEGIES = (ReleaseStrategy.DIRECT,)


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
    elif strategy not in AVAILABLE_STRATEGIES:
        fields["strategy"] = [f"The {strategy} strategy is not available yet; use direct."]
    changelog = changelog.strip() if isinstance(changelog, str) else ""
    if not changelog:
        fields["changelog"] = ["Say what this release changes for live users."]
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        fields["version"] = ["Give the number of a saved version of this agent."]
    elif not AgentVersion.objects.for_org(agent.org_id).filter(agent=agent, number=version).exists():
        fields["version"] = [f"This agent has no version {version}."]
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
) -> Release | Operation:
    """Make a saved version of `agent` live: a Release, or an operation awaiting approval.

    Checks, in API.md's order: 403 unless the caller manages the agent's stage; 400 for
    bad input (a strategy not available yet, a missing version, a blank changelog); 409
    for an archived agent or one with an active release; the stage's decision (423
    frozen, 409 gate_failed); then approvals (an operation `awaiting_approval`).
    """
    if not access.has_stage_role(agent.stage_id, "manager"):
        raise Forbidden(f"Releasing in {agent.stage.name} needs the manager role there.")
    changelog = _validate(agent, version=version, strategy=strategy, changelog=changelog)
    if agent.archived:
        raise Conflict("An archived agent serves no live traffic.")
    if active_release(agent) is not None:
        raise Conflict("This agent already has a release in progress.")
    decision = change_decide(
        access=access, kind="release", agent=agent, target_stage=agent.stage, override_freeze=override_freeze
    )
    decision.raise_for_blockers()
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
        return _release_direct(
            actor=access.user,
            agent=agent,
            version=version,
            changelog=changelog,
            decision=decision.to_json(),
        )


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
    return release


@operation_handler(KIND)
def release_run(operation: Operation) -> dict:
    """A release that waited for approval: ask the stage again, then make it live."""
    params = operation.params
    agent = Agent.objects.for_org(operation.org_id).select_related("stage").get(pk=params["agent"])
    if agent.archived:
        raise Conflict("The agent was archived meanwhile.")
    change_recheck(operation=operation, kind="release", agent=agent, target_stage=agent.stage, target=agent)
    with transaction.atomic():
        release = _release_direct(
            actor=operation.requested_by,
            agent=agent,
            version=params["version"],
            changelog=params["changelog"],
            decision=params.get("decision"),
        )
        result = {"release": str(release.pk), "live_version": release.candidate_version}
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
