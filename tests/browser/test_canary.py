"""A production manager starts a canary, watches it advance on live traffic, and rolls it back."""

import time

import httpx
import pytest
from playwright.sync_api import expect

from tests.factories import skill

from .conftest import DEMO_PASSWORD, sign_in
from .test_releases import approve, in_production, production_gate_set_aside, shoot  # noqa: F401 (a fixture)

MANAGERS = ("production@acme.test", "owner@acme.test")


def api(base: str, email: str = "admin@acme.test") -> httpx.Client:
    http = httpx.Client(base_url=base, timeout=30)
    token = http.post("/api/v1/auth/token/", json={"email": email, "password": DEMO_PASSWORD}).json()["token"]
    http.headers["Authorization"] = f"Token {token}"
    return http


def wait(check, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def approved(base: str, http: httpx.Client, response) -> None:
    """A production change waits for the demo's 2 approvals: give them, let the worker run it."""
    assert response.status_code == 202, response.text
    operation = response.json()["operation"]
    approve(base, operation["result"]["approval"], MANAGERS)
    wait(
        lambda: http.get(f"/api/v1/orgs/acme/operations/{operation['id']}/").json()["status"] == "succeeded",
        60,
        "the approved operation",
    )


@pytest.mark.usefixtures("production_unfrozen", "production_gate_set_aside")
def test_start_a_canary_watch_it_advance_and_roll_back(page, stack):
    base = stack["base"]
    agent = in_production(base)
    http = api(base)
    root = f"/api/v1/orgs/acme/agents/{agent}"
    # Version 1 goes live (approved), then a version 2 with a greeting is saved, not live.
    approved(base, http, http.post(f"{root}/releases/", json={"version": 1, "changelog": "Launch"}))
    made = http.post(
        f"{root}/components/",
        json={"kind": "skill", "name": "greeting", "spec": skill(["hello"], ["Hello from the canary."])},
    )
    assert made.status_code == 201, made.text
    assert http.post(f"{root}/versions/", json={"changelog": "A greeting"}).status_code == 201
    key = http.post("/api/v1/orgs/acme/stages/production/keys/", json={"name": "canary load"}).json()["key"]

    sign_in(page, "admin@acme.test")
    page.goto(f"/orgs/acme/agents/{agent}/releases/")
    page.get_by_label("Strategy").select_option("canary")
    expect(page.get_by_role("button", name="Start the release")).to_be_visible()
    expect(page.get_by_label("Steps", exact=False)).to_have_value("5:1h 25:2h 100")
    expect(page.locator("#smoke-fields")).to_be_hidden()  # blue-green only
    page.get_by_label("Version", exact=True).select_option("2")
    page.get_by_label("Changelog", exact=False).fill("Canary of the greeting.")
    page.get_by_label("Steps", exact=False).fill("20:1s 60:1h 100")
    page.get_by_label("Analysis interval", exact=False).fill("5s")
    page.get_by_label("Minimum conversations per version").fill("5")
    page.get_by_label("Max error-rate increase", exact=False).fill("0.5")
    page.get_by_label("Inconclusive verdicts before pausing").fill("50")
    shoot(page, "canary-start-form")
    page.get_by_role("button", name="Start the release").click()
    # The demo's Production requires approvals: the operation waits, then the canary starts.
    expect(page.locator("[data-awaiting-approval]")).to_be_visible()
    operation = page.url.rstrip("/").rsplit("/", 1)[-1]
    approval = http.get(f"/api/v1/orgs/acme/operations/{operation}/").json()["result"]["approval"]
    approve(base, approval, MANAGERS)
    release = wait(
        lambda: next(
            (r for r in http.get(f"{root}/releases/").json()["results"] if r["strategy"] == "canary"), None
        ),
        60,
        "the canary to start",
    )
    page.goto(f"/orgs/acme/agents/{agent}/releases/{release['id']}/")
    expect(page.locator("[data-release-weight]")).to_have_attribute("data-release-weight", "20")
    shoot(page, "canary-at-20")

    # Live traffic on both versions through the gateway, until the analysis advances it.
    gateway = httpx.Client(base_url=base, timeout=30, headers={"Authorization": f"Bearer {key}"})
    lineage = http.get(f"{root}/").json()["lineage"]
    lineage = lineage["slug"] if isinstance(lineage, dict) else lineage
    run = f"/api/v1/run/acme/{lineage}/production/conversations/"
    for i in range(40):
        started = gateway.post(run, json={"user": f"visitor-{i}"})
        assert started.status_code == 201, started.text
        said = gateway.post(f"{run}{started.json()['conversation']}/messages/", json={"text": "hello"})
        assert said.status_code == 200, said.text
    # The page polls itself: the weight moves on without a reload.
    expect(page.locator("[data-release-weight]")).to_have_attribute(
        "data-release-weight", "60", timeout=60_000
    )
    expect(page.locator('tr[data-verdict="pass"]').first).to_be_visible()
    shoot(page, "canary-advanced")

    page.get_by_label("Why roll back?").fill("Changed our minds")
    page.once("dialog", lambda dialog: dialog.dismiss())  # Cancel first: nothing happens
    page.get_by_role("button", name="Roll back").click()
    time.sleep(1)
    assert http.get(f"{root}/releases/{release['id']}/").json()["status"] == "progressing"
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Roll back").click()
    expect(page.locator("[data-release-status]")).to_have_attribute("data-release-status", "rolled_back")
    expect(page.locator("[data-release-weight]")).to_have_attribute("data-release-weight", "0")
    shoot(page, "canary-rolled-back")
    after = http.get(f"{root}/releases/{release['id']}/").json()
    assert (after["status"], after["weight"], after["reason"]) == ("rolled_back", 0, "Changed our minds")
    versions = {gateway.post(run, json={"user": f"visitor-{i}"}).json()["version"] for i in range(40)}
    assert versions == {1}
