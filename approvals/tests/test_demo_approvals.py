"""In the demo, Production requires 2 approvals from its managers, and whoever of them asks,
two others can approve. (The walkthrough itself, from the staging suite run to the clone
in Production, is rollouts/tests/test_demo_walkthrough.py.)"""

from django.core.management import call_command

from accounts.models import Membership, Organization, Stage
from lifecycle.access import access_for
from rollouts.policy import effective_document, stored_document


def test_demo_production_requires_two_approvals_from_its_managers(db):
    call_command("seed_demo")
    call_command("seed_demo")  # idempotent: the policy is set once and kept
    org = Organization.objects.get(slug="acme")
    production = Stage.objects.for_org(org).get(slug="production")
    assert stored_document(production)["approvals"] == {"required": 2, "expires_in_hours": 72}
    assert effective_document(production)["approvals"]["required"] == 2
    managers = {
        m.user.email
        for m in Membership.objects.for_org(org).select_related("user")
        if access_for(m.user, org).has_stage_role(production, "manager")
    }
    assert {"staging@acme.test", "production@acme.test", "admin@acme.test", "owner@acme.test"} <= managers
    for requester in managers:
        assert len(managers - {requester}) >= 2, requester
