"""The pipeline board on the demo's Overview, and a stage dashboard with live traffic."""

import re
import subprocess

from playwright.sync_api import expect

from .conftest import ARTIFACTS, PYTHON, ROOT, sign_in

TRAFFIC = """
from datetime import timedelta
from django.utils import timezone
from accounts.models import Organization
from agents.models import Agent
from monitoring.tests.helpers import converse
from monitoring.rollup import metrics_rollup

org = Organization.objects.get(slug="acme")
agent = Agent.objects.for_org(org).filter(lineage__slug="acme-support", stage__slug="development").first()
error = {"type": "error", "code": "tool_failed", "message": "boom"}
for i in range(12):
    converse(agent, at=timezone.now() - timedelta(minutes=3 + i % 5),
             replies=[(180 + 40 * i, error if i == 0 else None)], rating=4 + i % 2)
metrics_rollup(org_id=org.pk, now=timezone.now() + timedelta(minutes=1))
"""


def shoot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_the_board_on_the_overview(page):
    sign_in(page, "admin@acme.test")
    page.goto("/orgs/acme/")
    board = page.locator("section.board")
    expect(board.get_by_role("heading", name="Pipeline board")).to_be_visible()
    for stage in ("Development", "Testing", "Staging", "Production"):
        expect(board.get_by_role("columnheader", name=stage)).to_be_visible()
    row = board.locator("tbody tr", has=page.get_by_text("acme-support"))
    expect(row).to_have_count(1)
    expect(row.locator(".badge.live").first).to_be_visible()
    shoot(page, "pipeline-board")
    # A cell's version links to that agent's page.
    row.locator("td.board-cell a").first.click()
    expect(page).to_have_url(re.compile(r"/orgs/acme/agents/[0-9a-f-]{36}/$"))


def test_a_stage_dashboard_with_live_traffic(page, stack):
    subprocess.run(
        [PYTHON, "manage.py", "shell", "-c", TRAFFIC],
        cwd=ROOT,
        env=stack["env"],
        check=True,
        capture_output=True,
    )
    sign_in(page, "admin@acme.test")
    page.goto("/orgs/acme/")
    page.locator("section.board").get_by_role("link", name="Development", exact=True).click()
    expect(page.get_by_role("heading", name="Development dashboard")).to_be_visible()
    row = page.locator("tbody tr", has=page.get_by_role("link", name="Acme Support"))
    expect(row).to_be_visible()
    cells = row.locator("td")
    assert int(cells.nth(1).inner_text()) >= 12  # conversations in the last 24 h
    expect(page.get_by_role("heading", name="Spend")).to_be_visible()
    shoot(page, "stage-dashboard")
