"""An admin adds a webhook, sends a test, sees the delivery arrive, and deletes it."""

from __future__ import annotations

import time

from playwright.sync_api import expect

from tests.http_servers import Recorder

from .conftest import ARTIFACTS, sign_in


def test_add_send_test_see_the_delivery_then_delete(page):
    with Recorder(lambda r, q: (200, {"ok": True}, 0)) as server:
        sign_in(page, "admin@acme.test")
        page.get_by_role("link", name="Webhooks").click()
        expect(page.get_by_role("heading", name="Webhooks")).to_be_visible()
        page.get_by_label("URL").fill(server.url + "/lifecycle")
        page.get_by_label("Events").fill("promotion.* gate.failed")
        page.get_by_label("Signing secret").fill("browser-secret-0123456789")
        page.get_by_role("button", name="Add webhook").click()
        expect(page.get_by_text("Added the webhook")).to_be_visible()
        page.get_by_role("button", name="Send test").click()
        expect(page.get_by_text("Test event sent")).to_be_visible()
        # The worker delivers it (the embedded broker polls): the log shows the answer.
        log = page.locator("#delivery-log")
        deadline = time.monotonic() + 30
        while "HTTP 200" not in log.inner_text() and time.monotonic() < deadline:
            time.sleep(0.5)
            page.reload()
        expect(log).to_contain_text("ping")
        expect(log).to_contain_text("HTTP 200")
        expect(log).to_contain_text("succeeded")
        assert [r["body"]["event"] for r in server.requests] == ["ping"]
        assert server.requests[0]["headers"]["X-Lifecycle-Signature"].startswith("sha256=")
        page.screenshot(path=str(ARTIFACTS / "webhook_delivery_log.png"), full_page=True)

    # Cancel on the confirmation keeps it; OK deletes it.
    answers = iter(["dismiss", "accept"])
    page.on("dialog", lambda dialog: dialog.accept() if next(answers) == "accept" else dialog.dismiss())
    page.get_by_role("button", name="Delete").click()
    page.reload()
    expect(page.get_by_role("heading", name="Webhook to")).to_be_visible()
    page.get_by_role("button", name="Delete").click()
    expect(page.get_by_text("Deleted the webhook")).to_be_visible()
    expect(page.get_by_text("No webhooks yet.")).to_be_visible()


def test_notifications_page_and_mark_all_read(page):
    # What is listed depends on what other browser tests did to the shared demo stack
    # (promotions, back-ports); the page, and reading it all, work either way.
    sign_in(page, "owner@acme.test")
    nav = page.get_by_role("navigation", name="Sections")
    page.get_by_role("link", name="Notifications").click()
    expect(page.get_by_role("heading", name="Notifications")).to_be_visible()
    items = page.locator("ul.notifications li")
    expect(items.first).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "notifications.png"), full_page=True)
    if page.get_by_role("button", name="Mark all as read").count():
        page.get_by_role("button", name="Mark all as read").click()
    expect(nav.locator(".nav-count[aria-label$='unread']")).to_have_count(0)
    expect(page.locator("ul.notifications li.unread")).to_have_count(0)
