"""The demo's approvals: Production requires 2 approvals from its managers (idempotent)."""

from __future__ import annotations

from accounts.models import Membership, Stage
from lifecycle.access import access_for
from rollouts.policy import stage_policy_update, stored_document

DEMO_APPROVALS = {"required": 2, "expires_in_hours": 72}


def seed_demo_approvals(*, org) -> str | None:
    """Set Production's approvals once; a policy someone already set is left alone."""
    stage = Stage.objects.for_org(org).filter(slug="production").first()
    if stage is None:
        return None
    stored = stored_document(stage)
    if "approvals" in stored:
        return None
    owner = Membership.objects.for_org(org).filter(role="owner").select_related("user").first().user
    stage_policy_update(
        access=access_for(owner, org), stage=stage, document={**stored, "approvals": DEMO_APPROVALS}
    )
    return "Production requires 2 approvals from its managers."
