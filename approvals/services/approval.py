"""Change approvals: open a request, decide it, cancel, expire or void it.

State machine (ApprovalStatus): pending → approved | rejected | expired | cancelled.
Every transition locks the request's row first (select_for_update), checks its status,
writes the audit entry, and moves the operation in the same transaction: the last
approval queues it (operation_enqueue, on commit), anything else cancels it. So two
managers giving the last approval at once queue the operation once: the second one
finds the request approved and gets 409.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from agents.models import Agent
from agents.versioning import current_entries
from lifecycle.access import Access
from lifecycle.audit import audit_record
from lifecycle.constraints import constraint_violated
from lifecycle.errors import Conflict, Forbidden, Invalid
from lifecycle.operations import Operation, OperationStatus, operation_cancel, operation_enqueue
from rollouts.policy import effective_document

from ..events import approval_emit
from ..models import ApprovalDecision, ApprovalRequest, ApprovalStatus, DecisionChoice

SOURCE_CHANGED = "source changed"
MAX_COMMENT = 5000


def source_fingerprint(agent: Agent | None) -> str:
    """A digest of the agent's components as they are now ("" for none)."""
    if agent is None:
        return ""
    entries = current_entries(agent)
    return hashlib.sha256(json.dumps(entries, separators=(",", ":")).encode()).hexdigest()


def group_status(request: ApprovalRequest, decisions=None) -> list[dict]:
    """Each group's quota: who is in it, how many of them approved, whether it is met."""
    decisions = list(request.decisions.all()) if decisions is None else decisions
    approvers = {str(d.user_id) for d in decisions if d.decision == DecisionChoice.APPROVE}
    return [
        {
            "name": group["name"],
            "members": group["members"],
            "required": group["required"],
            "approved": len(approvers & set(group["members"])),
            "met": len(approvers & set(group["members"])) >= group["required"],
        }
        for group in request.groups or []
    ]


def approvals_count(decisions) -> int:
    return sum(1 for d in decisions if d.decision == DecisionChoice.APPROVE)


def _summary(request: ApprovalRequest, **extra) -> dict:
    return {
        "kind": request.kind,
        "agent": str(request.agent_id),
        "target_stage": request.target_stage.slug,
        "operation": str(request.operation_id),
        **extra,
    }


# --- opening ----------------------------------------------------------------------------
def approval_request_open(
    *,
    access: Access,
    operation: Operation,
    kind: str,
    agent: Agent,
    source_agent,
    target_stage,
    decision,
    reason,
) -> ApprovalRequest:
    """Record the request of a change that waits for approvals (rollouts' APPROVAL_OPENERS).

    Runs inside the change's transaction, right after its operation was created in
    `awaiting_approval`; the operation's `result.approval` points here, so the 202 the
    client gets names the request.
    """
    approvals = effective_document(target_stage)["approvals"]
    now = timezone.now()
    try:
        with transaction.atomic():  # a savepoint: a rival open request is a clean 409
            request = ApprovalRequest.objects.create(
                org=access.org,
                kind=kind,
                agent=agent,
                source_agent=source_agent,
                target_stage=target_stage,
                requested_by=access.user,
                required=decision.approvals_required,
                groups=approvals.get("groups") or [],
                operation=operation,
                reason=(reason or "")[:10000],
                fingerprint=source_fingerprint(source_agent),
                expires_at=now + timedelta(hours=approvals["expires_in_hours"]),
            )
    except IntegrityError as exc:
        if constraint_violated(exc, "approval_one_pending_per_change"):
            raise Conflict("This change already waits for approval.") from exc
        raise
    operation.result = {**(operation.result or {}), "approval": str(request.pk)}
    Operation.objects.for_org(access.org).filter(pk=operation.pk).update(result=operation.result)
    audit_record(
        org=access.org,
        actor=access.user,
        action="approval.requested",
        target=request,
        changes=_summary(request, required=request.required, expires_at=request.expires_at.isoformat()),
    )
    approval_emit(request, "approval.requested")
    return request


# --- closing ----------------------------------------------------------------------------
def _lock(org, request_id) -> ApprovalRequest:
    return (
        ApprovalRequest.objects.for_org(org)
        .select_for_update()
        .select_related("org", "agent", "target_stage", "requested_by")
        .get(pk=request_id)
    )


def _cancel_operation(request: ApprovalRequest, actor) -> None:
    operation = Operation.objects.for_org(request.org_id).get(pk=request.operation_id)
    if not operation.is_finished:
        operation_cancel(actor=actor, operation=operation)


def _close(request: ApprovalRequest, *, status: str, actor, reason: str, action: str) -> None:
    """End an open request without running its change: the operation is cancelled."""
    request.status = status
    request.closed_at = timezone.now()
    request.closed_reason = reason[:200]
    request.save(update_fields=["status", "closed_at", "closed_reason"])
    _cancel_operation(request, actor)
    audit_record(
        org=request.org,
        actor=actor,
        action=action,
        target=request,
        changes=_summary(request, status=status, reason=reason),
    )


def _stale(request: ApprovalRequest, now) -> tuple[str, str, str] | None:
    """Why a pending request can no longer be decided: (status, reason, audit action)."""
    if request.expires_at <= now:
        return ApprovalStatus.EXPIRED, "expired", "approval.expired"
    status = (
        Operation.objects.for_org(request.org_id)
        .filter(pk=request.operation_id)
        .values_list("status", flat=True)
        .first()
    )
    if status != OperationStatus.AWAITING_APPROVAL:
        return ApprovalStatus.CANCELLED, f"operation {status}", "approval.cancelled"
    if request.source_agent_id and request.fingerprint:
        source = Agent.objects.for_org(request.org_id).get(pk=request.source_agent_id)
        if source_fingerprint(source) != request.fingerprint:
            return ApprovalStatus.CANCELLED, SOURCE_CHANGED, "approval.voided"
    return None


def _close_stale(request: ApprovalRequest, stale: tuple[str, str, str]) -> None:
    status, reason, action = stale
    _close(request, status=status, actor=None, reason=reason, action=action)
    if status == ApprovalStatus.EXPIRED:
        approval_emit(request, "approval.expired")


def _stale_message(stale: tuple[str, str, str]) -> str:
    status, reason, _ = stale
    if status == ApprovalStatus.EXPIRED:
        return "This approval request has expired; ask again."
    if reason == SOURCE_CHANGED:
        return "The source agent changed after the request was made; the request is void. Ask again."
    return f"This approval request was cancelled ({reason})."


# --- deciding ---------------------------------------------------------------------------
def _comment(comment, *, required: bool) -> str:
    comment = comment.strip() if isinstance(comment, str) else ""
    if required and not comment:
        raise Invalid(fields={"comment": ["Say why you reject the change."]})
    if len(comment) > MAX_COMMENT:
        raise Invalid(fields={"comment": [f"At most {MAX_COMMENT} characters."]})
    return comment


def may_decide(access: Access, request: ApprovalRequest) -> bool:
    return (
        access.has_stage_role(request.target_stage_id, "manager")
        and request.requested_by_id != access.user.pk
    )


def approval_decide(
    *, access: Access, request: ApprovalRequest, decision: str, comment: str = "", if_match=None
) -> ApprovalRequest:
    """A manager of the target stage approves or rejects.

    403 for the requester and anyone who does not manage the target stage; 409 for a
    request that is no longer pending (decided, expired, voided) and for a second decision
    by the same person. A rejection rejects the request and cancels the operation; the
    approval that completes the count (and every group's quota) queues the operation.
    """
    if decision not in DecisionChoice.values:
        raise Invalid(fields={"decision": [f"Choose one of: {', '.join(DecisionChoice.values)}."]})
    comment = _comment(comment, required=decision == DecisionChoice.REJECT)
    stale = None
    with transaction.atomic():
        locked = _lock(access.org, request.pk)
        if if_match is not None:
            if_match(locked)
        if locked.requested_by_id == access.user.pk:
            raise Forbidden("You asked for this change: someone else has to approve it.")
        if not access.has_stage_role(locked.target_stage_id, "manager"):
            raise Forbidden(f"Only managers of {locked.target_stage.name} decide on changes into it.")
        if locked.status != ApprovalStatus.PENDING:
            raise Conflict(f"This approval request is already {locked.status}.")
        if ApprovalDecision.objects.for_org(access.org).filter(request=locked, user=access.user).exists():
            raise Conflict("You have already decided on this request.")
        stale = _stale(locked, timezone.now())
        if stale is not None:
            _close_stale(locked, stale)
        else:
            _record(access, locked, decision, comment)
    if stale is not None:
        # Raised after the commit: the request is closed (and its operation cancelled) for good.
        raise Conflict(_stale_message(stale))
    return locked


def _record(access: Access, locked: ApprovalRequest, decision: str, comment: str) -> None:
    try:
        with transaction.atomic():
            ApprovalDecision.objects.create(
                org=access.org, request=locked, user=access.user, decision=decision, comment=comment
            )
    except IntegrityError as exc:
        if constraint_violated(exc, "approval_one_decision_per_user"):
            raise Conflict("You have already decided on this request.") from exc
        raise
    decisions = list(locked.decisions.select_related("user"))
    audit_record(
        org=access.org,
        actor=access.user,
        action=f"approval.{decision}",
        target=locked,
        changes=_summary(locked, comment=comment[:500], approvals=approvals_count(decisions)),
    )
    if decision == DecisionChoice.REJECT:
        _close(
            locked,
            status=ApprovalStatus.REJECTED,
            actor=access.user,
            reason=f"rejected by {access.user.email}",
            action="approval.rejected",
        )
        approval_emit(locked, "approval.rejected")
        return
    groups = group_status(locked, decisions)
    if approvals_count(decisions) < locked.required or not all(group["met"] for group in groups):
        return
    locked.status = ApprovalStatus.APPROVED
    locked.closed_at = timezone.now()
    locked.save(update_fields=["status", "closed_at"])
    operation = Operation.objects.for_org(access.org).select_for_update().get(pk=locked.operation_id)
    operation.status = OperationStatus.QUEUED
    operation.save(update_fields=["status"])
    operation_enqueue(operation)  # on commit; its run asks the freeze windows and the gate again
    audit_record(
        org=access.org,
        actor=access.user,
        action="approval.approved",
        target=locked,
        changes=_summary(locked, approvers=[str(d.user_id) for d in decisions]),
    )
    approval_emit(locked, "approval.approved")


def approval_cancel(*, access: Access, request: ApprovalRequest, comment: str = "") -> ApprovalRequest:
    """The requester withdraws the change: the request is cancelled with its operation."""
    comment = _comment(comment, required=False)
    with transaction.atomic():
        locked = _lock(access.org, request.pk)
        if locked.requested_by_id != access.user.pk:
            raise Forbidden("Only the person who asked for this change may cancel the request.")
        if locked.status != ApprovalStatus.PENDING:
            raise Conflict(f"This approval request is already {locked.status}.")
        _close(
            locked,
            status=ApprovalStatus.CANCELLED,
            actor=access.user,
            reason=f"cancelled by the requester: {comment}" if comment else "cancelled by the requester",
            action="approval.cancelled",
        )
    return locked


# --- housekeeping -----------------------------------------------------------------------
def approvals_expire_due(now=None) -> int:
    """Close pending requests past their expiry, or whose operation ended elsewhere (the
    operation's own Cancel). Runs from Celery beat across every org; returns how many."""
    now = now or timezone.now()
    due = list(
        ApprovalRequest.objects.dangerously_unscoped()
        .filter(status=ApprovalStatus.PENDING)
        .exclude(expires_at__gt=now, operation__status=OperationStatus.AWAITING_APPROVAL)
        .values_list("org_id", "pk")[:500]
    )
    closed = 0
    for org_id, pk in due:
        with transaction.atomic():
            locked = _lock(org_id, pk)
            if locked.status != ApprovalStatus.PENDING:
                continue
            stale = _stale(locked, now)
            if stale is not None:
                _close_stale(locked, stale)
                closed += 1
    return closed


def _void_changed(agent: Agent) -> None:
    pending = list(
        ApprovalRequest.objects.for_org(agent.org_id)
        .filter(source_agent=agent, status=ApprovalStatus.PENDING)
        .values_list("pk", flat=True)
    )
    if not pending:
        return
    fingerprint = source_fingerprint(agent)
    for pk in pending:
        locked = _lock(agent.org_id, pk)
        if (
            locked.status == ApprovalStatus.PENDING
            and locked.fingerprint
            and locked.fingerprint != fingerprint
        ):
            _close(
                locked,
                status=ApprovalStatus.CANCELLED,
                actor=None,
                reason=SOURCE_CHANGED,
                action="approval.voided",
            )


def approvals_on_components_changed(*, agent: Agent) -> None:
    """agents' COMPONENTS_CHANGED hook: an edit of a source voids what showed its old content."""
    _void_changed(agent)


def approvals_on_version_written(*, actor, agent: Agent, version) -> None:
    """agents' VERSION_WRITTEN hook: pulls, restores and imports change content too."""
    _void_changed(agent)
