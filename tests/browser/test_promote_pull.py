"""A tester promotes an agent like the demo one to Testing, then pulls the developer's later
changes. (The demo's Acme Support is already in Testing and Staging for the evaluation
walkthrough, so this test builds its own copy of it in Development.)"""

import subprocess
import uuid

from playwright.sync_api import expect

from .conftest import ARTIFACTS, PYTHON, ROOT, sign_in
from .test_agents import open_tab

SETUP = """
from accounts.models import Organization, User
from agents.demo import COMPONENTS, SETTINGS
from agents.services.agents import agent_create
from agents.services.components import component_create
from agents.services.versions import version_save
from lifecycle.access import access_for

org = Organization.objects.get(slug="acme")
developer = access_for(User.objects.get(email="developer@acme.test"), org)
agent = agent_create(access=developer, name={name!r}, description="Like Acme Support.", settings=SETTINGS)
for kind, name, spec in COMPONENTS:
    component_create(access=developer, agent=agent, kind=kind, name=name, spec=spec)
version_save(access=developer, agent=agent, changelog="As the demo agent.")
"""


def agent_like_the_demo(stack) -> str:
    name = f"Support copy {uuid.uuid4().hex[:6]}"
    subprocess.run(
        [PYTHON, "manage.py", "shell", "-c", SETUP.format(name=name)],
        cwd=ROOT,
        env=stack["env"],
        check=True,
        capture_output=True,
    )
    return name


def shoot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_promote_then_pull_with_one_knowledge_item_deselected(browser, stack):
    name = agent_like_the_demo(stack)
    tester = browser.new_context(base_url=stack["base"]).new_page()
    sign_in(tester, "tester@acme.test")
    tester.get_by_role("link", name="Agents").click()
    tester.wait_for_url("**/agents/")  # the Overview's board names agents too
    tester.get_by_role("link", name=name).click()
    tester.get_by_role("link", name="Promote to Testing").click()
    expect(tester.get_by_role("heading", name=f"Promote {name} to Testing")).to_be_visible()
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
    developer.wait_for_url("**/agents/")
    developer.get_by_role("link", name=name).click()
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
