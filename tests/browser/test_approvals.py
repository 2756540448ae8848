"""A production manager opens the inbox, reads the evidence packet and approves; the
owner's approval (the second of the demo's two) queues the promotion, which runs."""

import time

import httpx
from playwright.sync_api import expect

from .conftest import ARTIFACTS, DEMO_PASSWORD, sign_in
from .test_releases import production_gate_set_aside  # noqa: F401  (a fixture)


def shoot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def client(base: str, email: str) -> httpx.Client:
    http = httpx.Client(base_url=base, timeout=30)
    key = http.post("/api/v1/auth/token/", json={"email": email, "password": DEMO_PASSWORD}).json()["token"]
    http.headers["Authorization"] = f"Token {key}"
    return http


def wait_done(http, operation: dict) -> dict:
    deadline = time.monotonic() + 60
    while operation["status"] not in ("succeeded", "failed", "cancelled"):
        assert time.monotonic() < deadline, operation
        time.sleep(0.3)
        operation = http.get(f"/api/v1/orgs/acme/operations/{operation['id']}/").json()
    return operation


def admin_asks_for_production(base: str) -> str:
    """A new agent brought to Staging by the admin, who asks to promote it to Production."""
    name = f"Returns helper {time.time_ns()}"
    admin = client(base, "admin@acme.test")
    agent = admin.post("/api/v1/orgs/acme/agents/", json={"name": name}).json()["id"]
    spec = {"utterances": ["return"], "responses": ["Within 30 days."]}
    admin.post(
        f"/api/v1/orgs/acme/agents/{agent}/components/",
        json={"kind": "skill", "name": "returns", "spec": spec},
    ).raise_for_status()
    for _ in range(2):
        started = admin.post(
            f"/api/v1/orgs/acme/agents/{agent}/promote/",
            json={"confirm": "accept", "changelog": "Next stage", "acknowledge_editors": True},
        )
        assert started.status_code == 202, started.text
        done = wait_done(admin, started.json()["operation"])
        assert done["status"] == "succeeded", done
        agent = done["result"]["agent"]["id"]
    # The admin asks, overriding the demo's weekend freeze of Production should the test
    # run inside it (an override outside a window changes nothing).
    asked = admin.post(
        f"/api/v1/orgs/acme/agents/{agent}/promote/",
        json={
            "confirm": "accept",
            "changelog": "Validated against the staging CRM.",
            "acknowledge_editors": True,
            "override_freeze": {"reason": "Browser test of approvals"},
        },
    )
    assert asked.status_code == 202, asked.text
    assert asked.json()["operation"]["status"] == "awaiting_approval"
    admin.close()
    return name


def test_two_production_managers_approve_from_the_evidence_packet(
    browser,
    stack,
    production_gate_set_aside,  # noqa: F811
):
    name = admin_asks_for_production(stack["base"])

    context = browser.new_context(base_url=stack["base"], viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15000)
    sign_in(page, "production@acme.test")
    nav = page.get_by_role("navigation", name="Sections").get_by_role("link", name="Approvals")
    expect(nav.locator(".nav-count")).to_be_visible()
    nav.click()
    page.wait_for_url("**/approvals/")
    expect(page.get_by_role("link", name="Actions")).to_be_visible()  # the action approvals tab
    shoot(page, "approvals-inbox")
    page.get_by_role("link", name=f"Promote {name}").click()
    page.wait_for_url("**/approvals/*/")
    for heading in (
        "Who asked, and why",
        "The change that will be applied",
        "Gate of Production, now",
        "Latest test runs",
        "Red team",
        "Latest soak",
    ):
        expect(page.get_by_role("heading", name=heading)).to_be_visible()
    expect(page.get_by_text("Validated against the staging CRM.")).to_be_visible()
    expect(page.get_by_text("Within 30 days.").first).to_be_visible()  # the content, side by side
    expect(page.get_by_text("0 of 2")).to_be_visible()
    shoot(page, "approval-evidence-packet")

    # Reject asks first; dismissing the dialog rejects nothing.
    page.get_by_label("Why reject?").fill("Not sure yet.")
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="Reject").click()
    time.sleep(0.5)
    expect(page.locator("[data-status]")).to_have_text("pending")

    page.get_by_label("Comment").fill("Evidence read: the returns answer is right.")
    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_text("Approval recorded: the change waits for the others.")).to_be_visible()
    expect(page.get_by_text("1 of 2")).to_be_visible()
    expect(page.get_by_text("Evidence read: the returns answer is right.")).to_be_visible()
    approval_url = page.url
    context.close()

    context = browser.new_context(base_url=stack["base"], viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15000)
    sign_in(page, "owner@acme.test")
    page.goto("/orgs/acme/approvals/")
    page.get_by_role("link", name=f"Promote {name}").click()
    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_text("Approved: the change is queued")).to_be_visible()
    expect(page.locator("[data-status]")).to_have_text("approved")
    shoot(page, "approval-approved")
    page.get_by_role("link", name="Follow the operation").click()
    expect(page.locator("#operation-status [data-status]")).to_have_attribute(
        "data-status", "succeeded", timeout=60000
    )
    shoot(page, "approval-operation-succeeded")
    assert approval_url.endswith("/")
    context.close()
