"""Presence starts with a change, not with opening a module; viewers get a read-only page."""

from __future__ import annotations

import subprocess

from playwright.sync_api import expect

from .conftest import ARTIFACTS, PYTHON, ROOT, sign_in

# An agent of its own, so the presence this test leaves does not hold up other tests'
# promotions of the demo agent ("someone is editing").
SEED = """
from accounts.models import Organization, User
from agents.services.agents import agent_create
from lifecycle.access import access_for

org = Organization.objects.get(slug="acme")
access = access_for(User.objects.get(email="developer@acme.test"), org)
print(agent_create(access=access, name="Presence bot", settings={"instructions": "Help."}).pk)
"""
COUNT = """
from agents.models import Presence
print(Presence.objects.dangerously_unscoped().filter(agent_id={agent!r}).count())
"""


def shell(stack, code: str) -> str:
    done = subprocess.run(
        [PYTHON, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=stack["env"],
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip().splitlines()[-1]


def open_demo_agent(page, tab: str) -> None:
    page.goto("/orgs/acme/agents/")
    page.get_by_role("link", name="Acme Support").first.click()
    expect(page.get_by_role("heading", name="Acme Support")).to_be_visible()
    page.get_by_role("link", name=tab, exact=True).click()
    page.wait_for_url("**/m/**")


def test_opening_a_module_is_not_editing_until_something_changes(page, stack):
    agent = shell(stack, SEED)
    sign_in(page, "developer@acme.test")
    page.goto(f"/orgs/acme/agents/{agent}/m/knowledge/")
    expect(page.get_by_role("heading", name="Presence bot")).to_be_visible()
    page.wait_for_timeout(1500)
    assert shell(stack, COUNT.format(agent=agent)) == "0", "opening a module counted as editing"
    with page.expect_request(lambda r: r.url.endswith("/presence/") and r.method == "POST") as beat:
        page.locator("#add-form").get_by_label("Title").fill("Shipping")
    assert "editing=1" in beat.value.post_data
    page.wait_for_load_state("networkidle")
    assert shell(stack, COUNT.format(agent=agent)) == "1"


def test_a_viewer_sees_the_agent_read_only(page):
    sign_in(page, "viewer@acme.test")
    open_demo_agent(page, "Skills")
    expect(
        page.get_by_text("You can view this agent; editing needs the editor role in Development.")
    ).to_be_visible()
    expect(page.get_by_role("button", name="Save")).to_have_count(0)
    expect(page.locator("#add-form")).to_have_count(0)
    page.locator("details.component summary").first.click()
    expect(page.locator("details.component[open] fieldset input").first).to_be_disabled()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "viewer-read-only-skills.png"), full_page=True)
