from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from lifecycle.access import Access
from lifecycle.audit import audit_record
from lifecycle.errors import Conflict, Forbidden, Invalid

from ..models import Membership, OrgRole, Stage, StageRole, StageRoleLevel, User


def _require_admin(access: Access, message: str) -> None:
    if not access.is_admin:
        raise Forbidden(message)


def _resolve_stage_roles(access: Access, stage_roles: dict) -> dict:
    """{"development": "editor"} → {Stage: "editor"}, with field-level errors."""
    if not isinstance(stage_roles, dict):
        raise Invalid(fields={"stage_roles": ["Expected an object of stage slug → role."]})
    stages = {s.slug: s for s in Stage.objects.for_org(access.org)}
    errors: dict[str, list[str]] = {}
    resolved = {}
    for slug, role in stage_roles.items():
        if slug not in stages:
            errors[f"stage_roles.{slug}"] = ["No such stage in this organization."]
        elif role not in StageRoleLevel.values:
            errors[f"stage_roles.{slug}"] = [f"Must be one of: {', '.join(StageRoleLevel.values)}."]
        else:
            resolved[stages[slug]] = role
    if errors:
        raise Invalid(fields=errors)
    return resolved


def _check_role_change(access: Access, new_role: str, old_role: str | None = None) -> None:
    if new_role not in OrgRole.values:
        raise Invalid(fields={"role": [f"Must be one of: {', '.join(OrgRole.values)}."]})
    if OrgRole.OWNER in (new_role, old_role) and new_role != old_role and not access.is_owner:
        raise Forbidden("Only owners can grant or take away the owner role.")


def _set_stage_roles(access: Access, membership: Membership, resolved: dict) -> None:
    """Replace the member's whole stage-role map."""
    StageRole.objects.for_org(access.org).filter(membership=membership).delete()
    StageRole.objects.bulk_create(
        StageRole(org=access.org, membership=membership, stage=stage, role=role)
        for stage, role in resolved.items()
    )


def _lock_owners(org) -> int:
    """Lock the org's owner rows and return how many there are.

    Counting without the lock let two owners demote each other (or both leave) at once:
    each saw the other still an owner. The rows are locked in one order (by id), before
    the member's own row, so two such changes queue instead of deadlocking; the second
    re-reads the rows once the first commits and sees one owner left.
    """
    owners = Membership.objects.for_org(org).filter(role=OrgRole.OWNER).order_by("pk").select_for_update()
    return len(owners.values_list("pk", flat=True))


def _stage_role_summary(membership: Membership) -> dict:
    return {
        sr.stage.slug: sr.role
        for sr in StageRole.objects.for_org(membership.org_id)
        .filter(membership=membership)
        .select_related("stage")
    }


def member_add(
    *,
    access: Access,
    email: str,
    role: str = OrgRole.MEMBER,
    password: str | None = None,
    stage_roles: dict | None = None,
) -> Membership:
    """Add a person by email. An existing account's password is never touched."""
    _require_admin(access, "Only owners and admins can add members.")
    _check_role_change(access, role)
    resolved = _resolve_stage_roles(access, stage_roles or {})
    email = User.objects.normalize_email(email).strip().lower()
    user = User.objects.filter(email__iexact=email).first()
    created_user = user is None
    if created_user:
        if not password:
            raise Invalid(fields={"password": ["A password is required to create a new user."]})
        try:
            validate_password(password, User(email=email))
        except ValidationError as exc:
            raise Invalid(fields={"password": exc.messages}) from exc
    try:
        with transaction.atomic():
            if created_user:
                user = User.objects.create_user(email=email, password=password)
            membership = Membership.objects.create(org=access.org, user=user, role=role)
            _set_stage_roles(access, membership, resolved)
            audit_record(
                org=access.org,
                actor=access.user,
                action="member.add",
                target=membership,
                target_repr=email,
                changes={
                    "email": email,
                    "role": role,
                    "stage_roles": {s.slug: r for s, r in resolved.items()},
                    "new_account": created_user,
                },
            )
    except IntegrityError as exc:
        raise Conflict(f"{email} is already a member of this organization.") from exc
    return membership


def member_update(
    *,
    access: Access,
    membership: Membership,
    role: str | None = None,
    stage_roles: dict | None = None,
) -> Membership:
    """Change the org role and/or replace the whole stage-role map."""
    _require_admin(access, "Only owners and admins can change members.")
    changes: dict = {}
    with transaction.atomic():
        owners = _lock_owners(access.org)
        membership = Membership.objects.for_org(access.org).select_for_update().get(pk=membership.pk)
        if role is not None and role != membership.role:
            _check_role_change(access, role, membership.role)
            if membership.role == OrgRole.OWNER and owners <= 1:
                raise Conflict("An organization must keep at least one owner.")
            changes["role"] = [membership.role, role]
            membership.role = role
            membership.save(update_fields=["role", "updated_at"])
        if stage_roles is not None:
            resolved = _resolve_stage_roles(access, stage_roles)
            before = _stage_role_summary(membership)
            _set_stage_roles(access, membership, resolved)
            after = {s.slug: r for s, r in resolved.items()}
            if before != after:
                changes["stage_roles"] = [before, after]
            membership.save(update_fields=["updated_at"])
        if changes:
            audit_record(
                org=access.org,
                actor=access.user,
                action="member.update",
                target=membership,
                target_repr=membership.user.email,
                changes=changes,
            )
    return membership


def member_remove(*, access: Access, membership: Membership) -> None:
    is_self = membership.user_id == access.user.pk
    if not is_self:
        _require_admin(access, "Only owners and admins can remove members.")
    if membership.role == OrgRole.OWNER and not (access.is_owner or is_self):
        raise Forbidden("Only owners can remove an owner.")
    with transaction.atomic():
        owners = _lock_owners(access.org)
        membership = Membership.objects.for_org(access.org).select_for_update().get(pk=membership.pk)
        if membership.role == OrgRole.OWNER and owners <= 1:
            raise Conflict("An organization must keep at least one owner.")
        email = membership.user.email
        audit_record(
            org=access.org,
            actor=access.user,
            action="member.remove",
            target=membership,
            target_repr=email,
            changes={"email": email, "role": membership.role},
        )
        StageRole.objects.for_org(access.org).filter(membership=membership).delete()
        Membership.objects.for_org(access.org).filter(pk=membership.pk).delete()
