"""The Stages page shows spend against budget as a bar; a frozen stage's promote page says so."""

import subprocess
import time
from datetime import UTC, datetime, timedelta

from playwright.sync_api import expect

from .conftest import ARTIFACTS, PYTHON, ROOT, admin_api, set_production_windows, sign_in

SPEND = """
from accounts.models import Organization
from agents.models import Agent, Conversation
from agents.services.conversations import conversation_start

org = Organization.objects.get(slug="acme")
agent = Agent.objects.for_org(org).filter(lineage__slug="acme-support", stage__slug="development").first()
conversation = conversation_start(agent=agent, version=agent.version, draft=False, source="live")
Conversation.objects.for_org(org).filter(pk=conversation.pk).update(cost="41.25")
"""


def shoot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_the_stages_page_shows_spend_against_the_budget(page, stack):
    # Engines here cost nothing: the month's spend is written as a priced model would.
    subprocess.run(
        [PYTHON, "manage.py", "shell", "-c", SPEND],
        cwd=ROOT,
        env=stack["env"],
        check=True,
        capture_output=True,
    )
    url = "/api/v1/orgs/acme/stages/development/policy/"
    with admin_api(stack["base"]) as http:
        before = http.get(url).json()
        budget = {"monthly_budget": "50.00", "alert_at": 0.8, "block": ["live"]}
        assert http.put(url, json={**before, "spending": budget}).status_code == 200
    try:
        sign_in(page, "admin@acme.test")
        page.goto("/orgs/acme/stages/")
        row = page.locator("tr", has=page.locator("code", has_text="development"))
        bar = row.locator("meter.spend-bar")
        expect(bar).to_be_visible()
        assert float(bar.get_attribute("value")) >= 0.825  # 41.25 of 50.00, more if others spent
        expect(row.get_by_text("of 50.00")).to_be_visible()
        expect(row.locator(".badge.alert-warning")).to_be_visible()
        production = page.locator("tr", has=page.locator("code", has_text="production"))
        expect(production.get_by_text("of 500.00 (0 %)")).to_be_visible()
        shoot(page, "stages-spend")
        page.goto("/orgs/acme/stages/development/policy/")
        card = page.locator("#spending")
        expect(card.get_by_role("link", name="Acme Support")).to_be_visible()
        expect(card.locator("meter.spend-bar")).to_be_visible()
        shoot(page, "stage-policy-spend")
    finally:
        with admin_api(stack["base"]) as http:
            http.put(url, json=before)


def in_staging(base: str) -> str:
    """A new agent promoted over the API into Staging (no approvals there); its id."""
    with admin_api(base) as http:
        created = http.post("/api/v1/orgs/acme/agents/", json={"name": f"Freeze check {time.time_ns()}"})
        assert created.status_code == 201, created.text
        agent = created.json()["id"]
        for _ in range(2):
            started = http.post(
                f"/api/v1/orgs/acme/agents/{agent}/promote/",
                json={"confirm": "accept", "changelog": "Next stage", "acknowledge_editors": True},
            )
            assert started.status_code == 202, started.text
            operation = started.json()["operation"]
            deadline = time.monotonic() + 60
            while operation["status"] not in ("succeeded", "failed"):
                assert time.monotonic() < deadline, operation
                time.sleep(0.3)
                operation = http.get(f"/api/v1/orgs/acme/operations/{operation['id']}/").json()
            assert operation["status"] == "succeeded", operation
            agent = operation["result"]["agent"]["id"]
        return agent


def test_a_frozen_stage_promote_page_shows_the_freeze_with_its_reason_and_end(page, stack):
    agent = in_staging(stack["base"])
    ends = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=5)
    window = {
        "id": "launch",
        "kind": "once",
        "starts_at": (ends - timedelta(hours=8)).isoformat(),
        "ends_at": ends.isoformat(),
        "reason": "Launch week code freeze",
    }
    before = set_production_windows(stack["base"], [window])
    try:
        sign_in(page, "admin@acme.test")
        page.goto(f"/orgs/acme/agents/{agent}/promote/")
        notice = page.locator(".msg.frozen")
        expect(notice).to_contain_text("Production is frozen until")
        expect(notice).to_contain_text(ends.strftime("%H:%M") + " UTC")
        expect(notice).to_contain_text("Launch week code freeze")
        expect(page.get_by_label("Override the freeze (owners and admins): reason")).to_be_visible()
        shoot(page, "promote-frozen")
        page.goto("/orgs/acme/stages/")
        production = page.locator("tr", has=page.locator("code", has_text="production"))
        expect(production.locator(".msg.frozen")).to_contain_text("Launch week code freeze")
        shoot(page, "stages-frozen")
    finally:
        set_production_windows(stack["base"], before)
