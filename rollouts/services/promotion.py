"""Promote: an exact clone of an agent in the next stage.

The request checks everything in the order API.md gives and reserves the promotion at
once (one active promote operation per lineage and target stage, by a partial unique
constraint), so a race is a synchronous 409. The clone runs as an operation: every row
copied server-side in one transaction with the operation's finish, so no partial clone
is ever visible and a redelivered task either finds the work done or does all of it.
"""

from __future__ import annotations

from django.db import transaction

from accounts.models import Stage
from agents.components import PROMOTED_KINDS
from agents.copying import copy_components
from agents.models import Agent, AgentVersion, Component, VersionReason
from agents.services.presence import presence_active
from agents.services.versions import version_write
from lifecycle.access import Access
from lifecycle.audit import audit_record
from lifecycle.errors import Conflict, EditorsActive, Forbidden, Invalid
from lifecycle.operations import (
    Operation,
    OperationStatus,
    operation_failure_hook,
    operation_finish,
    operation_handler,
    operation_progress,
    operation_start,
)

from ..decision import approval_open, change_decide, change_recheck, decision_record
from ..events import agent_event, operation_failed_event

KIND = "agent.promote"


def next_stage(stage: Stage) -> Stage | None:
    return (
        Stage.objects.for_org(stage.org_id).filter(position__gt=stage.position).order_by("position").first()
    )


def active_agent_in(agent: Agent, stage: Stage) -> Agent | None:
    return (
        Agent.objects.for_org(agent.org_id)
        .filter(lineage_id=agent.lineage_id, stage=stage, archived_at__isnull=True)
        .first()
    )


def require_no_clone(agent: Agent, target: Stage) -> None:
    existing = active_agent_in(agent, target)
    if existing is not None:
        raise Conflict(
            f"This agent already has an active clone in {target.name}; archive it to promote again.",
            details={"agent": str(existing.pk)},
        )


def require_confirmation(confirm) -> None:
    if confirm != "accept":
        raise Invalid(fields={"confirm": ['Type "accept" to confirm.']})


def require_no_editors(access: Access, agent: Agent, acknowledged: bool) -> None:
    """428 while others edit the agent, until the caller acknowledges them."""
    editors = [p for p in presence_active(agent) if p.user_id != access.user.pk]
    if editors and not acknowledged:
        raise EditorsActive(
            details={
                "editors": [
                    {
                        "user": {"id": str(p.user_id), "email": p.user.email},
                        "module": p.module,
                        "last_seen": p.last_seen.isoformat(),
                    }
                    for p in editors
                ]
            }
        )


def exclusive_key(agent: Agent, stage: Stage) -> str:
    return f"promote:{agent.lineage_id}:{stage.pk}"


def agent_promote(
    *,
    access: Access,
    agent: Agent,
    confirm,
    changelog: str = "",
    acknowledge_editors: bool = False,
    override_freeze: dict | None = None,
) -> Operation:
    """Check and reserve a promotion of `agent` into the next stage; the clone runs as an operation."""
    target = next_stage(agent.stage)
    if target is None:
        raise Conflict(f"{agent.stage.name} is the last stage: there is nothing to promote into.")
    if not access.has_stage_role(target, "manager"):
        raise Forbidden(f"Promoting into {target.name} needs the manager role there.")
    require_confirmation(confirm)
    if agent.archived:
        raise Conflict("An archived agent cannot be promoted.")
    require_no_clone(agent, target)
    decision = change_decide(
        access=access, kind="promote", agent=agent, target_stage=target, override_freeze=override_freeze
    )
    decision.raise_for_blockers()
    require_no_editors(access, agent, acknowledge_editors)
    status = OperationStatus.AWAITING_APPROVAL if decision.approvals_required else OperationStatus.QUEUED
    with transaction.atomic():
        operation = operation_start(
            org=access.org,
            actor=access.user,
            kind=KIND,
            params={
                "source_agent": str(agent.pk),
                "target_stage": str(target.pk),
                "changelog": changelog,
                "override_freeze": override_freeze,
                "decision": decision.to_json(),
            },
            stage=target,
            target=agent,
            exclusive_key=exclusive_key(agent, target),
            status=status,
            conflict_message=f"A promotion of this agent into {target.name} is already under way.",
        )
        # Again, after the reservation: a rival promotion may have finished its clone
        # (and released its reservation) since the check above. Each statement sees
        # what is committed, so a clone committed by now is seen here.
        require_no_clone(agent, target)
        decision_record(access=access, decision=decision, target=agent)
        if status == OperationStatus.AWAITING_APPROVAL:
            approval_open(
                access=access,
                operation=operation,
                kind="promote",
                agent=agent,
                source_agent=agent,
                target_stage=target,
                decision=decision,
                reason=changelog,
            )
        audit_record(
            org=access.org,
            actor=access.user,
            action="agent.promote.request",
            target=agent,
            changes={
                "from": agent.stage.slug,
                "to": target.slug,
                "operation": str(operation.pk),
                "status": status,
                "decision": decision.to_json(),
            },
        )
        agent_event(
            "promotion.requested",
            agent,
            operation=operation,
            actor=access.user,
            from_stage=agent.stage.slug,
            to_stage=target.slug,
            status=status,
        )
    return operation


@operation_handler(KIND)
def promote_run(operation: Operation) -> dict:
    from agents.api.serializers import AgentSerializer

    org_id = operation.org_id
    source = (
        Agent.objects.for_org(org_id)
        .select_related("stage", "lineage")
        .get(pk=operation.params["source_agent"])
    )
    target_stage = Stage.objects.for_org(org_id).get(pk=operation.params["target_stage"])
    promoter = operation.requested_by
    # Asked again now: a window may have opened, or the gate changed, since the request.
    decision = change_recheck(
        operation=operation, kind="promote", agent=source, target_stage=target_stage, target=source
    )
    operation_progress(operation, 5)
    with transaction.atomic():
        if active_agent_in(source, target_stage) is not None:
            raise Conflict(f"The lineage got an active agent in {target_stage.name} meanwhile.")
        clone = Agent.objects.create(
            org_id=org_id,
            lineage=source.lineage,
            stage=target_stage,
            owner=promoter,
            source_agent=source,
            name=source.name,
            description=source.description,
        )
        operation_progress(operation, 15)
        copied = copy_components(source, clone, kinds=sorted(PROMOTED_KINDS), review_kinds=["variable"])
        operation_progress(operation, 70)
        source_version = (
            AgentVersion.objects.for_org(org_id).filter(agent=source, number=source.version).first()
        )
        version = version_write(
            actor=promoter,
            agent=clone,
            changelog=operation.params.get("changelog") or f"Promoted from {source.stage.name}.",
            reason=VersionReason.PROMOTE,
            source_version=source_version,
        )
        operation_progress(operation, 90)
        review = list(
            Component.objects.for_org(org_id)
            .filter(agent=clone, needs_review=True)
            .order_by("name")
            .values("uid", "name")
        )
        audit_record(
            org=clone.org,
            actor=promoter,
            action="agent.promote",
            target=clone,
            changes={
                "from": source.stage.slug,
                "to": target_stage.slug,
                "source_agent": str(source.pk),
                "source_version": source.version,
                "components": copied,
                "decision": decision.to_json(),
            },
        )
        clone = Agent.objects.for_org(org_id).select_related("lineage", "stage", "owner").get(pk=clone.pk)
        clone.updates_pending = False  # a fresh clone is the source, exactly
        result = {
            "agent": AgentSerializer(clone).data,
            "variables_to_review": [{"uid": str(v["uid"]), "name": v["name"]} for v in review],
            "components": copied,
            "version": version.number,
            "source_unsaved_changes": source.has_unsaved_changes,
            "url": f"/orgs/{clone.org.slug}/agents/{clone.pk}/",
        }
        agent_event(
            "promotion.succeeded",
            clone,
            operation=operation,
            actor=promoter,
            source_agent=str(source.pk),
            from_stage=source.stage.slug,
            to_stage=target_stage.slug,
            version=version.number,
        )
        operation_finish(operation, result=result)
    return result


@operation_failure_hook(KIND)
def promote_failed(operation: Operation, error: dict) -> None:
    source = (
        Agent.objects.for_org(operation.org_id)
        .select_related("stage")
        .get(pk=operation.params["source_agent"])
    )
    target_stage = Stage.objects.for_org(operation.org_id).get(pk=operation.params["target_stage"])
    operation_failed_event(
        "promotion.failed", source, operation, error, from_stage=source.stage.slug, to_stage=target_stage.slug
    )
