from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from lifecycle.access import Access
from lifecycle.audit import audit_record
from lifecycle.errors import Conflict, Forbidden, Invalid

from ..models import Membership, Organization, OrgRole, Stage

DEFAULT_STAGES = (
    ("development", "Development"),
    ("testing", "Testing"),
    ("staging", "Staging"),
    ("production", "Production"),
)
RESERVED_SLUGS = {"new", "api", "admin", "static"}


def _free_slug(base: str) -> str:
    base = (slugify(base) or "org")[:40].strip("-") or "org"
    candidate, n = base, 1
    while Organization.objects.filter(slug=candidate).exists() or candidate in RESERVED_SLUGS:
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def org_create(*, actor, name: str, slug: str | None = None) -> Organization:
    """Create an org with the default stages; the creator becomes its owner."""
    name = name.strip()
    if not name:
        raise Invalid(fields={"name": ["This field may not be blank."]})
    if slug:
        if slug in RESERVED_SLUGS or slugify(slug) != slug:
            raise Invalid(fields={"slug": ["Use lowercase letters, digits and hyphens."]})
    else:
        slug = _free_slug(name)
    try:
        with transaction.atomic():
            org = Organization.objects.create(slug=slug, name=name)
            Membership.objects.create(org=org, user=actor, role=OrgRole.OWNER)
            Stage.objects.bulk_create(
                Stage(org=org, slug=s, name=n, position=i) for i, (s, n) in enumerate(DEFAULT_STAGES)
            )
            audit_record(org=org, actor=actor, action="org.create", target=org, changes={"name": name})
    except IntegrityError as exc:
        raise Conflict(f"An organization with the slug '{slug}' already exists.") from exc
    return org


def org_update(*, access: Access, name: str) -> Organization:
    if not access.is_admin:
        raise Forbidden("Only owners and admins can rename the organization.")
    name = name.strip()
    if not name:
        raise Invalid(fields={"name": ["This field may not be blank."]})
    org = access.org
    with transaction.atomic():
        before = org.name
        org.name = name
        org.save(update_fields=["name"])
        audit_record(
            org=org,
            actor=access.user,
            action="org.update",
            target=org,
            changes={"name": [before, name]},
        )
    return org


def org_archive(*, access: Access) -> Organization:
    """Orgs are never deleted: archiving hides them and keeps the audit log whole."""
    if not access.is_owner:
        raise Forbidden("Only owners can archive the organization.")
    org = access.org
    with transaction.atomic():
        org.archived_at = timezone.now()
        org.save(update_fields=["archived_at"])
        audit_record(org=org, actor=access.user, action="org.archive", target=org)
    return org
