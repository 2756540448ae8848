"""What pages show of a stage: its freeze (now or within 7 days), its spend against the
budget as a bar with the agents behind it, and its open alerts; and the back-ports page's
freeze notice and override."""

import re
from datetime import timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Stage
from agents.services.agents import agent_archive
from lifecycle.audit import AuditEvent
from rollouts.models import Backport
from rollouts.spending import budget_state
from tests.factories import make_agent, owner_access, promote, signed_in

from .test_decision import open_now, set_policy
from .test_spending import spent


def window_in(hours: float, reason: str) -> dict:
    now = timezone.now()
    return {
        "id": "soon",
        "kind": "once",
        "starts_at": (now + timedelta(hours=hours)).isoformat(),
        "ends_at": (now + timedelta(hours=hours + 10)).isoformat(),
        "reason": reason,
    }


def production_with_spend(world, amount="8.00", **policy):
    dev = make_agent(world.acme, "Support")
    agent = promote(promote(promote(dev)))
    set_policy(
        world,
        "production",
        {"spending": {"monthly_budget": "10.00", "alert_at": 0.8, "block": ["live"]}, **policy},
    )
    spent(agent, amount)
    budget_state(Stage.objects.for_org(world.acme).get(slug="production"), refresh=True)  # opens the alert
    return agent


def test_the_stages_page_shows_spend_against_budget_open_alerts_and_an_upcoming_freeze(world):
    production_with_spend(world, freeze_windows=[window_in(30, "Black Friday")])
    page = signed_in(world.users["viewer"]).get("/orgs/acme/stages/").content.decode()
    row = re.search(r"<tr>(?:(?!</tr>).)*<code>production</code>.*?</tr>", page, re.S).group(0)
    assert re.search(r'<meter class="spend-bar"[^>]*value="0.8000"', row)
    assert "8.00 of 10.00 (80 %)" in row
    assert "Production freezes from" in row and "Black Friday" in row
    assert "alert-warning" in row and "Spend 8.00 has reached the alert threshold (8.00)" in row
    # Stages without a budget say what was spent.
    assert "0.00 spent in" in page and "no budget" in page


def test_a_stage_without_a_role_shows_nothing_of_its_spend(world):
    production_with_spend(world)
    page = signed_in(world.users["tester"]).get("/orgs/acme/stages/").content.decode()
    row = re.search(r"<tr>(?:(?!</tr>).)*<code>production</code>.*?</tr>", page, re.S).group(0)
    assert "spend-bar" not in row and "8.00" not in row and "alert-" not in row


def test_the_stages_page_costs_the_same_queries_with_budgets_alerts_and_freezes(world):
    client = signed_in(world.users["admin"])
    client.get("/orgs/acme/stages/")
    with CaptureQueriesContext(connection) as plain:
        client.get("/orgs/acme/stages/")
    production_with_spend(world, freeze_windows=[open_now()])
    set_policy(world, "testing", {"spending": {"monthly_budget": "1.00"}})
    with CaptureQueriesContext(connection) as busy:
        page = client.get("/orgs/acme/stages/").content.decode()
    assert "Production is frozen until" in page
    assert len(busy) == len(plain), [q["sql"] for q in busy]


def test_the_policy_page_shows_the_bar_the_agents_behind_it_and_the_alerts(world):
    agent = production_with_spend(world, amount="10.50")
    other = promote(promote(promote(make_agent(world.acme, "Sales"))))
    spent(other, "1.25", "console")
    agent_archive(access=owner_access(world.acme), agent=other)
    page = signed_in(world.users["viewer"]).get("/orgs/acme/stages/production/policy/").content.decode()
    card = re.search(r'<section class="card" id="spending".*?</section>', page, re.S).group(0)
    assert 'value="1.0000"' in card and "11.75 of 10.00 (118 %)" in card and "budget spent" in card
    assert "alert-critical" in card and "has reached the budget (10.00)" in card
    assert "new conversations from live are refused" in card
    rows = re.findall(r"<tr>\s*<td><a href=\"/orgs/acme/agents/([^/]+)/\">([^<]+)</a>(.*?)</tr>", card, re.S)
    assert [(r[0], r[1]) for r in rows] == [(str(agent.pk), agent.name), (str(other.pk), other.name)]
    assert "archived" in rows[1][2] and "console 1.25" in rows[1][2]


def test_promote_and_release_pages_warn_of_an_upcoming_freeze(world):
    agent = promote(promote(make_agent(world.acme)))  # in staging
    set_policy(world, "production", {"freeze_windows": [window_in(2, "launch week")]})
    page = signed_in(world.users["admin"]).get(f"/orgs/acme/agents/{agent.pk}/promote/").content.decode()
    assert "Production freezes from" in page and "launch week" in page
    assert 'name="override_reason"' not in page  # nothing to override yet
    set_policy(world, "production", {"freeze_windows": [window_in(24 * 8, "far away")]})
    page = signed_in(world.users["admin"]).get(f"/orgs/acme/agents/{agent.pk}/promote/").content.decode()
    assert "freezes from" not in page and "far away" not in page


def test_the_backports_page_shows_the_freeze_and_an_admin_applies_with_a_reason(world):
    from agents.models import Component
    from rollouts.services.backport import backport_propose
    from rollouts.tests.test_api_backport import hotfix, make_testing_agent

    _, testing = make_testing_agent(world.acme, world.access("developer"))
    hotfix(world, testing, world.access("tester"))
    uid = str(Component.objects.for_org(world.acme).get(agent=testing, name="faq").uid)
    backport = backport_propose(access=world.access("tester"), agent=testing, include=[uid])
    set_policy(world, "development", {"freeze_windows": [open_now("code freeze")]})

    developer = signed_in(world.users["developer"])
    page = developer.get("/orgs/acme/backports/").content.decode()
    assert "Development is frozen until" in page and "code freeze" in page
    assert 'name="override_reason"' not in page
    developer.post("/orgs/acme/backports/", {"backport": str(backport.pk), "confirm": "accept"})
    assert Backport.objects.for_org(world.acme).get(pk=backport.pk).status == "open"

    admin = signed_in(world.users["admin"])
    page = admin.get("/orgs/acme/backports/").content.decode()
    assert f'id="override_reason-{backport.pk}"' in page
    admin.post(
        "/orgs/acme/backports/",
        {
            "backport": str(backport.pk),
            "confirm": "accept",
            "override_reason": "the fix is the freeze's reason",
        },
    )
    assert Backport.objects.for_org(world.acme).get(pk=backport.pk).status == "applied"
    event = AuditEvent.objects.for_org(world.acme).get(action="stage.freeze_overridden")
    assert event.changes["reason"] == "the fix is the freeze's reason" and event.changes["kind"] == "backport"
