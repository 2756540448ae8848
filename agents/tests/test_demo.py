from django.core.management import call_command

from accounts.models import Membership, Organization
from agents.models import Agent, Component


def test_seed_demo_is_idempotent_and_complete(db):
    call_command("seed_demo")
    call_command("seed_demo")
    org = Organization.objects.get(slug="acme")
    assert Membership.objects.for_org(org).count() == 7
    agent = Agent.objects.for_org(org).get(lineage__slug="acme-support", stage__slug="development")
    assert agent.version == 2 and agent.owner.email == "developer@acme.test"
    kinds = set(Component.objects.for_org(org).filter(agent=agent).values_list("kind", flat=True))
    assert {"settings", "skill", "knowledge", "tool", "variable"} <= kinds
    # The evaluation walkthrough (rollouts.evaluation_demo, through agents.hooks.DEMO_SEEDERS)
    # takes it on to Testing and Staging: one agent per stage, all of the one lineage.
    stages = Agent.objects.for_org(org).values_list("lineage__slug", "stage__slug")
    assert sorted(stages) == [("acme-support", s) for s in ("development", "staging", "testing")]


def test_seed_demo_gives_production_a_budget_and_the_weekend_freeze_once(db):
    from accounts.models import Stage
    from rollouts.policy import effective_document, stage_policy_update
    from tests.factories import owner_access

    call_command("seed_demo")
    org = Organization.objects.get(slug="acme")
    production = Stage.objects.for_org(org).get(slug="production")
    document = effective_document(production)
    assert document["spending"] == {"monthly_budget": "500.00", "alert_at": 0.8, "block": ["live"]}
    [window] = document["freeze_windows"]
    assert (window["days"], window["start"], window["end_day"], window["end"], window["timezone"]) == (
        ["fri"],
        "12:00",
        "mon",
        "08:00",
        "Europe/Berlin",
    )
    # Someone lifts the freeze in the demo: running the command again leaves it lifted.
    stage_policy_update(
        access=owner_access(org), stage=production, document={**document, "freeze_windows": []}
    )
    call_command("seed_demo")
    assert effective_document(production)["freeze_windows"] == []
