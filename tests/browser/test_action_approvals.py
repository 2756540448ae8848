"""Action approvals in the browser: the console shows the waiting call, a person decides
from the inbox page in another browser, and the console gets the tool's result."""

import contextlib

import httpx
from playwright.sync_api import expect

from .conftest import DEMO_PASSWORD, sign_in
from .test_agents import open_tab
from .test_promote_pull import shoot

POLICY = "/api/v1/orgs/acme/stages/development/policy/"


@contextlib.contextmanager
def lookup_order_waits(base):
    """Development's policy makes the demo's lookup_order tool wait, for this test only."""
    token = httpx.post(
        f"{base}/api/v1/auth/token/", json={"email": "admin@acme.test", "password": DEMO_PASSWORD}
    ).json()["token"]
    http = httpx.Client(base_url=base, headers={"Authorization": f"Token {token}"}, timeout=30)
    before = http.get(POLICY).json()
    changed = http.put(
        POLICY, json={**before, "action_approvals": {"tools": ["lookup_order"], "timeout": "5m"}}
    )
    assert changed.status_code == 200, changed.text
    try:
        yield
    finally:
        assert http.put(POLICY, json=before).status_code == 200
        http.close()


def open_console(page, email):
    sign_in(page, email)
    page.get_by_role("link", name="Agents").click()
    page.wait_for_url("**/agents/")  # the Overview's board names agents too
    page.get_by_role("link", name="Acme Support").click()
    open_tab(page, "Test console", "**/console/")
    page.get_by_role("button", name="Start").click()
    expect(page.locator("#transcript li.agent.done").first).to_contain_text(
        "Hi! I'm Acme's support assistant"
    )


def ask(page, text):
    page.get_by_label("Message", exact=True).fill(text)
    page.get_by_role("button", name="Send").click()


def test_a_waiting_tool_call_decided_from_the_inbox_and_inline(page, browser, stack):
    with lookup_order_waits(stack["base"]):
        # The tester, a viewer of Development, talks; the call waits for a person.
        open_console(page, "tester@acme.test")
        ask(page, "Where is order 777?")
        box = page.locator("#approvals .approval")
        expect(box).to_contain_text("lookup_order waits for approval")
        expect(box).to_contain_text('"order_id": "777"')
        expect(box.get_by_role("button", name="Approve")).to_have_count(0)  # a viewer does not decide
        expect(box.get_by_role("link", name="Open in Approvals")).to_be_visible()
        shoot(page, "action-approval-console-waiting")

        # The developer, a manager of Development, approves from the inbox in another browser.
        other = browser.new_context(base_url=stack["base"], viewport={"width": 1280, "height": 860})
        inbox = other.new_page()
        sign_in(inbox, "developer@acme.test")
        inbox.get_by_role("link", name="Approvals").click()
        inbox.get_by_role("navigation", name="Kind of approval").get_by_role("link", name="Actions").click()
        card = inbox.locator("section.card").filter(has_text="lookup_order").first
        expect(card).to_contain_text("Where is order 777?")
        shoot(inbox, "action-approvals-inbox")
        card.get_by_label("Comment on lookup_order").fill("customer verified")
        card.get_by_role("button", name="Approve").click()
        expect(inbox.get_by_text("Nothing is waiting.")).to_be_visible()
        expect(inbox.get_by_role("row").filter(has_text="customer verified")).to_contain_text("approved")

        # The console gets the result, and the answer.
        expect(page.locator("#transcript li.agent.done").nth(1)).to_have_text(
            "Order 777 has shipped and should arrive in 2 days with ParcelCo."
        )
        expect(box.locator(".outcome")).to_have_text("Approved: the tool ran.")
        expect(page.locator("#events")).to_contain_text('tool result {"status":"shipped"')
        shoot(page, "action-approval-console-approved")

        # The developer's own console decides inline: rejected, the agent answers without it.
        mine = other.new_page()
        mine.set_default_timeout(15000)
        mine.goto(page.url)
        mine.get_by_role("button", name="Start").click()
        expect(mine.locator("#transcript li.agent.done").first).to_contain_text(
            "Hi! I'm Acme's support assistant"
        )
        ask(mine, "Where is order 888?")
        waiting = mine.locator("#approvals .approval")
        waiting.get_by_role("button", name="Reject").click()
        expect(waiting.locator(".outcome")).to_have_text("Not run: rejected.")
        expect(mine.locator("#events")).to_contain_text("tool failed: rejected")
        expect(mine.locator("#transcript li.agent.done").nth(1)).to_be_visible()
        shoot(mine, "action-approval-console-rejected")
        other.close()
