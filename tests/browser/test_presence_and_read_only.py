"""Presence starts with a change, not with opening a module; viewers get a read-only page."""

from __future__ import annotations

import subprocess

from playwright.sync_api import expect

from .conftest import ARTIFACTS, PYTHON, ROOT, sign_in

# The latest heartbeat of one user on the demo agent's knowledge module ("-" if none): other
# tests may have left rows of their own, so the test compares this before and after.
LAST_SEEN = """
from agents.models import Presence
row = (Presence.objects.dangerously_unscoped()
       .filter(user__email={email!r}, agent__name="Acme Support", module="knowledge")
       .order_by("-last_seen").first())
print(row.last_seen.isoformat() if row else "-")
"""


def last_heartbeat(stack, email: str) -> str:
    done = subprocess.run(
        [PYTHON, "manage.py", "shell", "-c", LAST_SEEN.format(email=email)],
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
    email = "developer@acme.test"
    before = last_heartbeat(stack, email)
    sign_in(page, email)
    open_demo_agent(page, "Knowledge")
    page.wait_for_timeout(1500)
    assert last_heartbeat(stack, email) == before, "opening a module counted as editing"
    with page.expect_request(lambda r: r.url.endswith("/presence/") and r.method == "POST") as beat:
        page.locator("#add-form").get_by_label("Title").fill("Shipping")
    assert "editing=1" in beat.value.post_data
    page.wait_for_load_state("networkidle")
    assert last_heartbeat(stack, email) not in ("-", before)


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
