"""A production manager makes a promoted agent live, after reading the production warning."""

import time

import httpx
from playwright.sync_api import expect

from .conftest import ARTIFACTS, sign_in


def shoot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def in_production(base: str) -> str:
    """A new agent promoted through every stage over the API; returns its production id."""
    from accounts.demo import DEMO_PASSWORD

    with httpx.Client(base_url=base, timeout=30) as http:
        token = http.post(
            "/api/v1/auth/token/", json={"email": "admin@acme.test", "password": DEMO_PASSWORD}
        ).json()["token"]
        http.headers["Authorization"] = f"Token {token}"
        created = http.post("/api/v1/orgs/acme/agents/", json={"name": f"Launch helper {time.time_ns()}"})
        assert created.status_code == 201, created.text
        agent = created.json()["id"]
        for _ in range(3):
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


def test_make_live_in_production(page, stack):
    agent = in_production(stack["base"])
    sign_in(page, "admin@acme.test")
    page.goto(f"/orgs/acme/agents/{agent}/")
    expect(page.locator(".live-version")).to_have_text("not live")
    page.get_by_role("link", name="Make live").click()
    page.wait_for_url("**/releases/**")
    expect(page.get_by_text("This changes what production users get now.")).to_be_visible()
    expect(page.get_by_text("Nothing is live.")).to_be_visible()
    expect(page.get_by_label("Version", exact=True)).to_have_value("1")
    page.get_by_label("Changelog", exact=False).fill("Launch day: the helper answers live users.")
    shoot(page, "make-live-dialog")
    page.get_by_role("button", name="Make live").click()
    expect(page.get_by_text("Version 1 is live.")).to_be_visible()
    expect(page.locator(".live-version")).to_have_text("live v1")
    history = page.locator("table.releases")
    expect(history.get_by_text("Launch day: the helper answers live users.")).to_be_visible()
    expect(history.get_by_text("admin@acme.test")).to_be_visible()
    shoot(page, "releases-history")
