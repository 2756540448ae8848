"""A tester promotes the demo agent to Testing, then pulls the developer's later changes."""

from playwright.sync_api import expect

from .conftest import ARTIFACTS, sign_in
from .test_agents import open_tab


def shoot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_promote_then_pull_with_one_knowledge_item_deselected(browser, stack):
    tester = browser.new_context(base_url=stack["base"]).new_page()
    sign_in(tester, "tester@acme.test")
    tester.get_by_role("link", name="Agents").click()
    tester.get_by_role("link", name="Acme Support").click()
    tester.get_by_role("link", name="Promote to Testing").click()
    expect(tester.get_by_role("heading", name="Promote Acme Support to Testing")).to_be_visible()
    tester.get_by_label("Changelog").fill("Ready for QA")
    shoot(tester, "promote-dialog")
    tester.get_by_label("Type accept to confirm").fill("accept")
    tester.get_by_role("button", name="Promote to Testing").click()
    # The operation page polls itself until the worker has made the clone.
    expect(tester.locator("[data-status]")).to_have_attribute("data-status", "succeeded", timeout=60000)
    expect(tester.get_by_text("CRM_API_KEY")).to_be_visible()  # variables to review
    # The page keeps the site's header and navigation, and the finished card drops "started".
    expect(tester.get_by_role("navigation", name="Sections")).to_be_visible()
    expect(tester.get_by_role("link", name="Lifecycle")).to_be_visible()
    expect(tester.get_by_text("Promotion started.")).to_have_count(0)
    shoot(tester, "operation-finished")
    tester.get_by_role("link", name="Open the result").click()
    expect(tester.get_by_text("owner tester@acme.test")).to_be_visible()
    clone_url = tester.url

    developer = browser.new_context(base_url=stack["base"]).new_page()
    sign_in(developer, "developer@acme.test")
    developer.get_by_role("link", name="Agents").click()
    developer.get_by_role("link", name="Acme Support").click()
    open_tab(developer, "Knowledge", "**/m/knowledge/")
    for name, title in (("gift-cards", "Gift cards"), ("loyalty", "Loyalty points")):
        add = developer.locator("#add-form")
        add.get_by_label("Name").fill(name)
        add.get_by_label("Title").fill(title)
        add.get_by_label("Body").fill(f"All about {title.lower()}.")
        add.get_by_role("button", name="Add").click()
        expect(developer.get_by_text(f"Added {name}.")).to_be_visible()

    tester.goto(clone_url)
    expect(tester.get_by_text("updates available")).to_be_visible()
    tester.get_by_role("link", name="Pull updates").click()
    expect(tester.locator(".count.created span")).to_have_text("2")
    tester.get_by_label("loyalty").uncheck()
    tester.get_by_label("Changelog").fill("Gift cards from Development")
    shoot(tester, "pull-dialog")
    tester.get_by_label("Type accept to confirm").fill("accept")
    tester.get_by_role("button", name="Pull updates").click()
    expect(tester.locator("[data-status]")).to_have_attribute("data-status", "succeeded", timeout=60000)
    tester.get_by_role("link", name="Open the result").click()
    open_tab(tester, "Knowledge", "**/m/knowledge/")
    expect(tester.get_by_text("gift-cards")).to_be_visible()
    expect(tester.get_by_text("loyalty")).to_have_count(0)
