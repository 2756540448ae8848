"""What rollouts tells webhooks and notifications (webhooks.events): one helper per
subject, so every event about an agent carries the same keys.

Data holds ids, names, stage slugs and counts, never component specs or variables.
"""

from __future__ import annotations

from webhooks.events import event_emit


def agent_data(agent, **extra) -> dict:
    return {
        "agent": str(agent.pk),
        "agent_name": agent.name,
        "stage": agent.stage.slug,
        "lineage": str(agent.lineage_id),
        **extra,
    }


def agent_event(event: str, agent, *, operation=None, actor=None, **extra) -> None:
    """Emit `event` about `agent`; call inside the transaction of the change."""
    data = agent_data(agent, **extra)
    if operation is not None:
        data["operation"] = str(operation.pk)
    if getattr(actor, "is_authenticated", False):
        data["by"] = actor.email
    event_emit(org=agent.org_id, event=event, data=data)


def backport_event(event: str, backport, *, actor=None, **extra) -> None:
    target, source = backport.target_agent, backport.source_agent
    agent_event(
        event,
        target,
        actor=actor,
        backport=str(backport.pk),
        source_agent=str(source.pk),
        from_stage=source.stage.slug,
        to_stage=target.stage.slug,
        items=len(backport.items or []),
        **extra,
    )


def operation_failed_event(event: str, agent, operation, error: dict, **extra) -> None:
    """An operation about `agent` failed: its code and message, as the operation says."""
    agent_event(
        event,
        agent,
        operation=operation,
        actor=operation.requested_by,
        code=error.get("code", ""),
        message=str(error.get("message", ""))[:500],
        **extra,
    )
