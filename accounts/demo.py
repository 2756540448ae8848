"""The demo org and its users (idempotent). See README for the emails and password."""

from django.db import transaction

from lifecycle.access import access_for

from .models import Membership, Organization, User
from .services.members import member_add
from .services.orgs import org_create

DEMO_PASSWORD = "lifecycle-demo"
DEMO_ORG = ("acme", "Acme Corp")
# email, org role, stage roles
DEMO_USERS = [
    ("owner@acme.test", "owner", {}),
    ("admin@acme.test", "admin", {}),
    ("developer@acme.test", "member", {"development": "manager"}),
    ("tester@acme.test", "member", {"development": "viewer", "testing": "manager"}),
    # Also a production manager: they ask for promotions into Production, which the
    # production manager and an admin approve (Production requires 2 approvals).
    ("staging@acme.test", "member", {"testing": "viewer", "staging": "manager", "production": "manager"}),
    ("production@acme.test", "member", {"staging": "viewer", "production": "manager"}),
    (
        "viewer@acme.test",
        "member",
        {s: "viewer" for s in ("development", "testing", "staging", "production")},
    ),
]


def seed_demo_org() -> tuple[Organization, int]:
    """The org `acme` with one user per role; returns (org, members added)."""
    with transaction.atomic():
        owner_email = DEMO_USERS[0][0]
        owner = User.objects.filter(email=owner_email).first() or User.objects.create_user(
            email=owner_email, password=DEMO_PASSWORD
        )
        slug, name = DEMO_ORG
        org = Organization.objects.filter(slug=slug).first() or org_create(actor=owner, name=name, slug=slug)
        access = access_for(owner, org)
        existing = set(Membership.objects.for_org(org).values_list("user__email", flat=True))
        added = 0
        for email, role, stage_roles in DEMO_USERS:
            if email not in existing:
                member_add(
                    access=access, email=email, role=role, password=DEMO_PASSWORD, stage_roles=stage_roles
                )
                added += 1
    return org, added
