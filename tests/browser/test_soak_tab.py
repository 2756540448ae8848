"""The Soak tab: start a soak of the demo agent, follow it, read its percentiles."""

import subprocess

from playwright.sync_api import expect

from .conftest import ARTIFACTS, PYTHON, ROOT, sign_in

FIND = """
from agents.models import Agent
print(Agent.objects.for_org_slug("acme").get(name="Acme Support", stage__slug="development").pk)
"""


def test_start_a_soak_and_see_its_percentiles(page, stack):
    found = subprocess.run(
        [PYTHON, "manage.py", "shell", "-c", FIND],
        cwd=ROOT,
        env=stack["env"],
        check=True,
        capture_output=True,
    )
    agent = found.stdout.decode().strip().splitlines()[-1]
    sign_in(page, "developer@acme.test")
    page.goto(f"/orgs/acme/agents/{agent}/")
    page.get_by_role("link", name="Soak", exact=True).click()
    expect(page.get_by_text("No soak tests yet.")).to_be_visible()
    page.get_by_label("Executions").fill("100")
    page.get_by_label("Concurrency").fill("4")
    page.get_by_role("button", name="Start soak").click()
    expect(page.get_by_text("succeeded").first).to_be_visible(timeout=60_000)
    page.goto(f"/orgs/acme/agents/{agent}/soak/")
    row = page.locator("table.soak-tests tbody tr").first
    expect(row).to_contain_text("succeeded")
    cells = row.locator("td")
    expect(cells.nth(3)).to_have_text("100")
    expect(cells.nth(4)).to_contain_text("0 %")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "soak_tab.png"), full_page=True)
