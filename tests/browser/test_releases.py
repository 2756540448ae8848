"""A production manager makes a promoted agent live, after reading the production warning."""

import time

import httpx
import pytest
from playwright.sync_api import expect

from .conftest import ARTIFACTS, sign_in


def shoot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def admin_client(base: str) -> httpx.Client:
    from accounts.demo import DEMO_PASSWORD

    http = httpx.Client(base_url=base, timeout=30)
    token = http.post("/api/v1/auth/token/", json={"email": "admin@acme.test", "password": DEMO_PASSWORD})
    http.headers["Authorization"] = f"Token {token.json()['token']}"
    return http


@pytest.fixture
def production_gate_set_aside(stack):
    """The demo's Production gate wants 95 % on Acme Support's Smoke suite, which no other
    lineage can run: this test's own agent could never pass it. Its setup sets the gate's
    accuracy checks aside (as an admin would) and puts them back afterwards."""
    policy = "/api/v1/orgs/acme/stages/production/policy/"
    http = admin_client(stack["base"])
    saved = http.get(policy).json()
    relaxed = {**saved, "gate": {**saved["gate"], "required_suites": [], "min_accuracy": None}}
    assert http.put(policy, json=relaxed).status_code == 200
    try:
        yield
    finally:
        assert http.put(policy, json=saved).status_code == 200
        http.close()


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
            if operation["status"] == "awaiting_approval":
                # The demo's Production requires 2 approvals from its managers (not the asker).
                approve(base, operation["result"]["approval"], ("production@acme.test", "owner@acme.test"))
            deadline = time.monotonic() + 60
            while operation["status"] not in ("succeeded", "failed"):
                assert time.monotonic() < deadline, operation
                time.sleep(0.3)
                operation = http.get(f"/api/v1/orgs/acme/operations/{operation['id']}/").json()
            assert operation["status"] == "succeeded", operation
            agent = operation["result"]["agent"]["id"]
        return agent


def approve(base: str, approval: str, managers) -> None:
    from accounts.demo import DEMO_PASSWORD

    for email in managers:
        with httpx.Client(base_url=base, timeout=30) as http:
            token = http.post("/api/v1/auth/token/", json={"email": email, "password": DEMO_PASSWORD}).json()
            http.headers["Authorization"] = f"Token {token['token']}"
            decided = http.post(f"/api/v1/orgs/acme/approvals/{approval}/approve/", json={"comment": "Fine."})
            assert decided.status_code == 200, decided.text


def test_make_live_in_production(page, stack, production_unfrozen, production_gate_set_aside):
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
    page.get_by_role("button", name="Start the release").click()
    # The demo's Production requires 2 approvals: the release waits for its managers.
    expect(page.locator("[data-awaiting-approval]")).to_be_visible()
    page.get_by_role("link", name="See the request and its evidence").click()
    page.wait_for_url("**/approvals/**")
    expect(page.get_by_text("Launch day: the helper answers live users.").first).to_be_visible()
    approval = page.url.rstrip("/").rsplit("/", 1)[-1]
    approve(stack["base"], approval, ("production@acme.test", "owner@acme.test"))
    deadline = time.monotonic() + 60
    while True:  # the worker runs the approved release
        page.goto(f"/orgs/acme/agents/{agent}/releases/")
        if page.locator(".live-version").inner_text().strip() == "live v1" or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    expect(page.locator(".live-version")).to_have_text("live v1")
    history = page.locator("table.releases")
    expect(history.get_by_text("Launch day: the helper answers live users.")).to_be_visible()
    expect(history.get_by_text("admin@acme.test")).to_be_visible()
    shoot(page, "releases-history")
