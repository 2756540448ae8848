"""The UI at 390 px wide (a phone): nothing makes the page scroll sideways; tables scroll
inside themselves, the navigation wraps, forms fit. Screenshots land in the artifacts folder."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .conftest import ARTIFACTS, sign_in

PAGES = [
    ("overview", "/orgs/acme/"),
    ("agents", "/orgs/acme/agents/"),
    ("members", "/orgs/acme/members/"),
    ("stages", "/orgs/acme/stages/"),
    ("audit", "/orgs/acme/audit/"),
    ("backports", "/orgs/acme/backports/"),
    ("account", "/account/"),
]
AGENT_TABS = ["", "m/skills/", "m/variables/", "versions/", "console/", "sharing/", "promote/"]


@pytest.fixture
def phone(browser, stack):
    context = browser.new_context(base_url=stack["base"], viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.set_default_timeout(15000)
    yield page
    context.close()


def assert_fits(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"390-{name}.png"), full_page=True)
    width = page.evaluate("() => document.documentElement.scrollWidth")
    # Name the widest culprits, so a failure says what to fix.
    wide = page.evaluate(
        """() => [...document.querySelectorAll('body *')]
            .filter(e => e.getBoundingClientRect().right > 391)
            .slice(0, 5)
            .map(e => `${e.tagName}.${e.className} ${Math.round(e.getBoundingClientRect().right)}`)"""
    )
    assert width <= 390, f"{name}: the page is {width}px wide at a 390px viewport: {wide}"


def test_pages_fit_a_phone(phone):
    sign_in(phone, "admin@acme.test")
    for name, url in PAGES:
        phone.goto(url)
        assert_fits(phone, name)
    phone.goto("/orgs/acme/agents/")
    phone.get_by_role("link", name="Acme Support").first.click()
    expect(phone.get_by_role("heading", name="Acme Support")).to_be_visible()
    agent = phone.url.split("/agents/")[1].split("/")[0]
    for tab in AGENT_TABS:
        phone.goto(f"/orgs/acme/agents/{agent}/{tab}")
        assert_fits(phone, "agent-" + (tab.strip("/").replace("/", "-") or "settings"))
