"""Webhook events of approvals, sent through the webhooks app's outbox."""

from __future__ import annotations

from webhooks.events import event_emit

from .models import ApprovalRequest


def approval_payload(request: ApprovalRequest) -> dict:
    """What a webhook receives about a request: ids, names and decisions, never content."""
    return {
        "approval": str(request.pk),
        "kind": request.kind,
        "status": request.status,
        "agent": str(request.agent_id),
        "agent_name": request.agent.name,
        "source_agent": str(request.source_agent_id) if request.source_agent_id else None,
        "target_stage": request.target_stage.slug,
        "requested_by": {"id": str(request.requested_by_id), "email": request.requested_by.email},
        "required": request.required,
        "operation": str(request.operation_id),
        "expires_at": request.expires_at.isoformat(),
        "reason": request.closed_reason,
        "decisions": [
            {
                "user": {"id": str(d.user_id), "email": d.user.email},
                "decision": d.decision,
                "at": d.at.isoformat(),
            }
            for d in request.decisions.all()
        ],
        "url": f"/orgs/{request.org.slug}/approvals/{request.pk}/",
    }


def approval_emit(request: ApprovalRequest, event: str) -> None:
    """Write the event to the outbox in the caller's transaction (webhooks delivers it)."""
    event_emit(org=request.org_id, event=event, data=approval_payload(request))
