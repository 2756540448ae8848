"""What test runs, red-team runs and soak tests share: the version they run and how they start."""

from __future__ import annotations

from agents.models import Agent, AgentVersion, ConversationSource
from lifecycle.access import Access
from lifecycle.audit import audit_record
from lifecycle.errors import Invalid
from lifecycle.operations import Operation, operation_start

from ..spending import budget_guard

# The source of the conversations each kind of run records, which a spent budget may block.
RUN_SOURCES = {
    "agent.test_run": ConversationSource.TEST_RUN,
    "agent.red_team": ConversationSource.TEST_RUN,
    "agent.soak": ConversationSource.SOAK,
}

DRAFT = "draft"


def evaluated_version(agent: Agent, version, *, draft_by_default: bool = False) -> int | None:
    """The saved version number to run (None: the working copy), or 400.

    `version` is a number, "draft", or None for the latest saved version; an agent with
    none saved yet runs its draft where `draft_by_default`, and is refused otherwise.
    """
    if version == DRAFT:
        return None
    if version is None:
        if not agent.version and not draft_by_default:
            raise Invalid(
                fields={"version": ['This agent has no saved version yet: save one, or choose "draft".']}
            )
        return agent.version or None
    if isinstance(version, bool) or not isinstance(version, int):
        raise Invalid(fields={"version": ['A saved version number, or "draft".']})
    if not AgentVersion.objects.for_org(agent.org_id).filter(agent=agent, number=version).exists():
        raise Invalid(fields={"version": [f"This agent has no version {version}."]})
    return version


def evaluation_start(
    *, access: Access, agent: Agent, run, kind: str, params: dict, result_key: str, action: str, changes: dict
) -> Operation:
    """Start the operation that performs `run` (already created in this transaction).

    The run's id is on the operation's result from the start, so clients follow it at once.
    A spent budget that blocks the run's source refuses it (402), and the run is rolled back
    with the caller's transaction.
    """
    if kind in RUN_SOURCES:
        budget_guard(stage=agent.stage, source=RUN_SOURCES[kind])
    operation = operation_start(
        org=access.org, actor=access.user, kind=kind, params=params, stage=agent.stage, target=agent
    )
    result = {result_key: str(run.pk)}
    Operation.objects.for_org(agent.org_id).filter(pk=operation.pk).update(result=result)
    operation.result = result
    type(run).objects.for_org(agent.org_id).filter(pk=run.pk).update(operation=operation)
    audit_record(
        org=access.org,
        actor=access.user,
        action=action,
        target=agent,
        changes={**changes, "operation": str(operation.pk)},
    )
    return operation
