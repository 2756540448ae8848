"""A developer builds an agent in the browser and finds the version in its history."""

from playwright.sync_api import expect

from .conftest import sign_in


def open_tab(page, name: str, url: str) -> None:
    """Click a tab and wait for its page: boosted links swap the page in place."""
    page.get_by_role("link", name=name, exact=True).click()
    page.wait_for_url(url)
    expect(page.get_by_role("link", name=name, exact=True)).to_have_attribute("aria-current", "page")


def test_create_agent_add_skill_and_knowledge_save_version(page):
    sign_in(page, "developer@acme.test")
    page.get_by_role("link", name="Agents").click()
    page.get_by_role("link", name="New agent").click()
    page.get_by_label("Name").fill("Order helper")
    page.get_by_label("Instructions").fill("Help customers with their orders.")
    page.get_by_role("button", name="Create agent").click()
    expect(page.get_by_role("heading", name="Order helper")).to_be_visible()

    open_tab(page, "Skills", "**/m/skills/")
    add = page.locator("#add-form")
    add.get_by_label("Name").fill("where-is-my-order")
    add.get_by_label("Utterances").fill("where is my order\ntrack my package")
    add.get_by_label("Responses").fill("Let me check that for you.")
    add.get_by_role("button", name="Add").click()
    expect(page.get_by_text("Added where-is-my-order.")).to_be_visible()

    open_tab(page, "Knowledge", "**/m/knowledge/")
    add = page.locator("#add-form")
    add.get_by_label("Name").fill("returns")
    add.get_by_label("Title").fill("Returns policy")
    add.get_by_label("Body").fill("Items can be returned within 30 days.")
    add.get_by_role("button", name="Add").click()
    expect(page.get_by_text("Added returns.")).to_be_visible()
    expect(page.get_by_text("unsaved changes").first).to_be_visible()

    open_tab(page, "Versions", "**/versions/")
    page.get_by_label("Changelog").fill("Order tracking and returns")
    page.get_by_role("button", name="Save version 2").click()
    expect(page.get_by_text("Saved version 2.")).to_be_visible()
    row = page.get_by_role("row").filter(has_text="Order tracking and returns")
    expect(row).to_contain_text("v2")
    expect(row).to_contain_text("developer@acme.test")

    page.get_by_label("From").select_option("1")
    page.get_by_label("to", exact=True).select_option("2")
    page.get_by_role("button", name="Compare").click()
    expect(page.get_by_text("2 created")).to_be_visible()


def test_form_errors_show_next_to_the_field(page):
    sign_in(page, "developer@acme.test")
    page.goto("/orgs/acme/agents/new/")
    page.get_by_label("Name").fill("Bad skills")
    page.get_by_role("button", name="Create agent").click()
    expect(page.get_by_role("heading", name="Bad skills")).to_be_visible()
    open_tab(page, "Skills", "**/m/skills/")
    add = page.locator("#add-form")
    add.get_by_label("Name").fill("empty")
    add.get_by_label("Responses").fill("Hello")
    add.get_by_role("button", name="Add").click()
    field = page.locator("#add-form .field.invalid")
    expect(field).to_contain_text("Give example utterances, patterns or both.")
    expect(field.get_by_label("Utterances")).to_be_visible()
