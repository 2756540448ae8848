from django.core.management import call_command

from accounts.models import Membership, Organization
from agents.models import Agent, Component


def test_seed_demo_is_idempotent_and_complete(db):
    call_command("seed_demo")
    call_command("seed_demo")
    org = Organization.objects.get(slug="acme")
    assert Membership.objects.for_org(org).count() == 7
    agent = Agent.objects.for_org(org).get(lineage__slug="acme-support")
    assert agent.version == 2 and agent.owner.email == "developer@acme.test"
    kinds = set(Component.objects.for_org(org).filter(agent=agent).values_list("kind", flat=True))
    assert {"settings", "skill", "knowledge", "tool", "variable"} <= kinds
    assert Agent.objects.for_org(org).count() == 1
