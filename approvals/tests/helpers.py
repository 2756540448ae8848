"""Approval requests made through the real services, for the tests."""

from __future__ import annotations

from accounts.models import Stage
from approvals.models import ApprovalRequest
from rollouts.policy import stage_policy_update
from rollouts.services.promotion import agent_promote
from tests.factories import add_component, make_agent, owner_access, skill


def require_approvals(org, stage_slug: str = "testing", required: int = 2, **approvals) -> Stage:
    stage = Stage.objects.for_org(org).get(slug=stage_slug)
    stage_policy_update(
        access=owner_access(org), stage=stage, document={"approvals": {"required": required, **approvals}}
    )
    return stage


def make_approval(org, access=None, agent=None, required: int = 2) -> ApprovalRequest:
    """A promotion into Testing waiting for `required` approvals (Testing's policy says so)."""
    require_approvals(org, "testing", required)
    access = access or owner_access(org)
    if agent is None:
        agent = make_agent(org, access=access)
        add_component(agent, "skill", "faq", skill(["faq"]), access=access)
    operation = agent_promote(
        access=access, agent=agent, confirm="accept", changelog="Ready for QA.", acknowledge_editors=True
    )
    return ApprovalRequest.objects.for_org(org).get(pk=operation.result["approval"])
