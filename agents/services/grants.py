"""Sharing one agent with another member of the org (django-guardian object grants)."""

from __future__ import annotations

import uuid

from django.contrib.auth.models import Permission
from django.db import transaction

from accounts.models import Membership, User
from lifecycle.access import Access
from lifecycle.audit import audit_record
from lifecycle.errors import Forbidden, Invalid

from ..models import Agent, AgentUserObjectPermission

GRANTABLE = ("view", "change", "delete")


def can_share(access: Access, agent: Agent) -> bool:
    return agent.owner_id == access.user.pk or access.has_stage_role(agent.stage_id, "manager")


def _beyond_what_is_held(access: Access, agent: Agent, permissions: list[str]) -> list[str]:
    """The permissions the actor may not hand out.

    A manager of the agent's stage may grant anything. Anyone else (the agent's owner)
    only what they hold themselves, through their stage role or a grant at least as
    strong: an owner demoted to viewer had granted themselves change and delete back.
    """
    if access.has_stage_role(agent.stage_id, "manager"):
        return []
    return [p for p in permissions if not access.can(p, agent)]


def _member(access: Access, ref: str) -> User:
    """A member of this org by email or id; anyone else is 'not a member', never found."""
    memberships = Membership.objects.for_org(access.org).select_related("user")
    ref = (ref or "").strip()
    try:
        membership = memberships.filter(user_id=uuid.UUID(ref)).first()
    except ValueError:
        membership = memberships.filter(user__email__iexact=ref).first()
    if membership is None:
        raise Invalid(fields={"user": ["No member of this organization has that email or id."]})
    return membership.user


def grant_set(
    *, access: Access, agent: Agent, user_ref: str, permissions: list[str]
) -> tuple[User, list[str]]:
    """Give one member exactly these permissions on the agent (replacing earlier ones)."""
    if not can_share(access, agent):
        raise Forbidden("Only the agent's owner or a manager of its stage can share it.")
    wanted = sorted(set(permissions))
    if not wanted or any(p not in GRANTABLE for p in wanted):
        raise Invalid(fields={"permissions": [f"Choose from: {', '.join(GRANTABLE)}."]})
    beyond = _beyond_what_is_held(access, agent, wanted)
    if beyond:
        raise Forbidden(
            f"You can only share what you hold yourself; you do not hold: {', '.join(beyond)}. "
            "A manager of the agent's stage can grant more."
        )
    user = _member(access, user_ref)
    perms = {
        p.codename.split("_", 1)[0]: p
        for p in Permission.objects.filter(
            content_type__app_label="agents", codename__in=[f"{w}_agent" for w in wanted]
        )
    }
    with transaction.atomic():
        grants = AgentUserObjectPermission.objects.for_org(access.org).filter(content_object=agent, user=user)
        before = sorted(g.permission.codename.split("_", 1)[0] for g in grants.select_related("permission"))
        grants.delete()
        AgentUserObjectPermission.objects.bulk_create(
            AgentUserObjectPermission(org=access.org, content_object=agent, user=user, permission=perms[w])
            for w in wanted
        )
        audit_record(
            org=access.org,
            actor=access.user,
            action="agent.share",
            target=agent,
            changes={"user": user.email, "permissions": [before, wanted]},
        )
    return user, wanted


def grant_revoke(*, access: Access, agent: Agent, user: User) -> None:
    if not can_share(access, agent):
        raise Forbidden("Only the agent's owner or a manager of its stage can share it.")
    with transaction.atomic():
        AgentUserObjectPermission.objects.for_org(access.org).filter(content_object=agent, user=user).delete()
        audit_record(
            org=access.org,
            actor=access.user,
            action="agent.unshare",
            target=agent,
            changes={"user": user.email},
        )


def grants_of(agent: Agent) -> dict[User, list[str]]:
    """{user: ["change", "view"]}, ordered by email."""
    rows = (
        AgentUserObjectPermission.objects.for_org(agent.org_id)
        .filter(content_object=agent)
        .select_related("user", "permission")
        .order_by("user__email", "permission__codename")
    )
    out: dict[User, list[str]] = {}
    for row in rows:
        out.setdefault(row.user, []).append(row.permission.codename.split("_", 1)[0])
    return out
