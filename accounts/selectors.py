"""Reads for accounts. Every function is given the caller's access (or user)."""

import uuid

from django.db.models import Count, OuterRef, Prefetch, Q, QuerySet, Subquery

from lifecycle.access import Access

from .models import ApiToken, Membership, Organization, Stage, StageRole, User


def orgs_for_user(user: User) -> QuerySet[Organization]:
    """The caller's active orgs, each annotated with the caller's `role`."""
    mine = Membership.objects.for_user(user).filter(org=OuterRef("pk"))
    return (
        Organization.objects.filter(archived_at__isnull=True, pk__in=mine.values("org_id"))
        .annotate(role=Subquery(mine.values("role")[:1]))
        .order_by("slug")
    )


def members_of(access: Access) -> QuerySet[Membership]:
    return member_details(Membership.objects.for_org(access.org), access.org)


def member_details(memberships: QuerySet[Membership], org) -> QuerySet[Membership]:
    """An org-scoped membership queryset with what a member listing shows, in order."""
    return (
        memberships.select_related("user")
        .prefetch_related(
            Prefetch(
                "stage_roles",
                queryset=StageRole.objects.for_org(org).select_related("stage").order_by("stage__position"),
            )
        )
        .order_by("created_at")
    )


def stages_of(org) -> QuerySet[Stage]:
    return Stage.objects.for_org(org).order_by("position")


def stages_with_agent_counts(org) -> list[Stage]:
    """The stages in order, each with `agent_count`: its active agents (for the reorder warning).

    Counted through the reverse relation by name so accounts needs no import of agents.
    """
    return list(
        stages_of(org).annotate(
            agent_count=Count("agents", filter=Q(agents__archived_at__isnull=True), distinct=True)
        )
    )


def stage_roles_map(membership: Membership) -> dict[str, str]:
    """{"development": "editor", …} from a prefetched membership."""
    return {sr.stage.slug: sr.role for sr in membership.stage_roles.all()}


def tokens_of(user: User) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user).order_by("-created_at")


def token_of(user: User, token_id: str) -> ApiToken | None:
    """One of the user's tokens, or None (also for an id that is not a UUID)."""
    try:
        return tokens_of(user).filter(pk=uuid.UUID(str(token_id))).first()
    except ValueError:
        return None
