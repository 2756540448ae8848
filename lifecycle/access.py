"""Permission resolution, in one place.

What a user may do in an org is the union of:
- their org role (`owner` | `admin` | `member`); owners and admins hold every stage role;
- their stage roles (`viewer` < `editor` < `manager`, per stage);
- django-guardian grants on single objects (`view_agent`, `change_agent`, …), which sit
  inside the tenant filter and never replace it.

`Access` is resolved once per request (or task) and asked everything after that.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from django.db.models import Q, QuerySet

from accounts.models import STAGE_ROLE_RANK, Membership, Organization, OrgRole, StageRole

from .errors import NotFound

# The stage role an object-level action needs when no grant covers it.
ACTION_STAGE_ROLE = {"view": "viewer", "change": "editor", "delete": "editor", "manage": "manager"}


@dataclass
class Access:
    user: object
    org: Organization
    membership: Membership
    # stage id → role, for the stages the member holds a role in.
    stage_roles: dict = field(default_factory=dict)

    @property
    def role(self) -> str:
        return self.membership.role

    @property
    def is_owner(self) -> bool:
        return self.membership.role == OrgRole.OWNER

    @property
    def is_admin(self) -> bool:
        return self.membership.role in (OrgRole.OWNER, OrgRole.ADMIN)

    def stage_role(self, stage) -> str | None:
        if self.is_admin:
            return "manager"
        return self.stage_roles.get(getattr(stage, "pk", stage))

    def has_stage_role(self, stage, minimum: str) -> bool:
        role = self.stage_role(stage)
        return role is not None and STAGE_ROLE_RANK[role] >= STAGE_ROLE_RANK[minimum]

    def stage_ids_with(self, minimum: str = "viewer") -> set | None:
        """Stage ids where the member holds at least `minimum`; None means every stage."""
        if self.is_admin:
            return None
        return {
            sid for sid, role in self.stage_roles.items() if STAGE_ROLE_RANK[role] >= STAGE_ROLE_RANK[minimum]
        }

    # --- object grants (django-guardian, direct foreign-key models) -------------------
    def granted_ids(self, model, action: str) -> QuerySet | None:
        """Ids of `model` rows granted to the user for `action`, as a subquery."""
        grant_model = _grant_model(model)
        if grant_model is None:
            return None
        codename = f"{action}_{model._meta.model_name}"
        return (
            grant_model.objects.for_org(self.org)
            .filter(user=self.user, permission__codename=codename)
            .values("content_object_id")
        )

    def has_grant(self, obj, action: str) -> bool:
        grant_model = _grant_model(type(obj))
        if grant_model is None:
            return False
        codename = f"{action}_{obj._meta.model_name}"
        return self._grants_for(grant_model, obj.pk).__contains__(codename)

    def _grants_for(self, grant_model, pk) -> set[str]:
        cache = self.__dict__.setdefault("_grant_cache", {})
        key = (grant_model, pk)
        if key not in cache:
            cache[key] = set(
                grant_model.objects.for_org(self.org)
                .filter(user=self.user, content_object_id=pk)
                .values_list("permission__codename", flat=True)
            )
        return cache[key]

    # --- the questions views and services ask -----------------------------------------
    def visible(self, queryset: QuerySet, *, stage_field: str = "stage") -> QuerySet:
        """Narrow an org-scoped queryset to rows in stages the user can see, or granted."""
        stage_ids = self.stage_ids_with("viewer")
        if stage_ids is None:
            return queryset
        condition = Q(**{f"{stage_field}_id__in": stage_ids})
        granted = self.granted_ids(queryset.model, "view")
        if granted is not None:
            condition |= Q(pk__in=granted)
        return queryset.filter(condition)

    def can(self, action: str, obj, *, stage=None) -> bool:
        """May the user do `action` (view/change/delete/manage) to `obj` in its stage?"""
        stage = stage if stage is not None else getattr(obj, "stage_id", None)
        if stage is not None and self.has_stage_role(stage, ACTION_STAGE_ROLE[action]):
            return True
        if action == "view" and self.has_grant(obj, "change"):
            return True
        return action in ("view", "change", "delete") and self.has_grant(obj, action)

    @cached_property
    def user_ref(self) -> dict:
        return {"id": str(self.user.pk), "email": self.user.email}


def _grant_model(model):
    from guardian.utils import get_user_obj_perms_model

    try:
        grant_model = get_user_obj_perms_model(model)
    except Exception:  # guardian raises a bare lookup error for models without one
        return None
    # Only direct foreign-key grant models carry `org`; the generic one never applies.
    return grant_model if hasattr(grant_model, "org_id") or _has_org(grant_model) else None


def _has_org(model) -> bool:
    return any(f.name == "org" for f in model._meta.get_fields())


def resolve_access(user, org_slug: str) -> Access:
    """The caller's access to the org named in the URL; 404 unless they are a member."""
    if not getattr(user, "is_authenticated", False) or not org_slug:
        raise NotFound()
    membership = (
        Membership.objects.for_user(user)
        .filter(org__slug=org_slug, org__archived_at__isnull=True)
        .select_related("org")
        .first()
    )
    if membership is None:
        raise NotFound()
    roles = dict(
        StageRole.objects.for_org(membership.org_id)
        .filter(membership=membership)
        .values_list("stage_id", "role")
    )
    return Access(user=user, org=membership.org, membership=membership, stage_roles=roles)


def access_for(user, org: Organization) -> Access:
    """The same, for code that already holds the org (services, tasks)."""
    return resolve_access(user, org.slug)
