"""The Tests tab: add a suite and a case (a refused case keeps what was typed), and make a
case from a console conversation with one click on the conversations page."""

import subprocess

from playwright.sync_api import expect

from .conftest import ARTIFACTS, PYTHON, ROOT, sign_in

# A real console conversation: the builtin runtime answers, the turns are stored as the
# console stores them.
SEED = """
import asyncio
from agents.models import Agent
from agents.runtime.compile import compile_working_copy
from agents.runtime.session import Session
from agents.services.conversations import conversation_record, conversation_start
agent = Agent.objects.for_org_slug("acme").get(name="Acme Support", stage__slug="development")
conversation = conversation_start(agent=agent, version=agent.version or 1, draft=True, source="console")
session = Session(conversation_id=str(conversation.pk), compiled=compile_working_copy(agent))
async def say(text):
    return [event async for event in session.respond(text)]
asyncio.run(say("Where is order #12345?"))
conversation_record(conversation=conversation, turns=session.take_pending())
print(agent.pk, conversation.pk)
"""


def test_tests_tab_suites_cases_and_a_case_from_a_conversation(page, stack):
    made = subprocess.run(
        [PYTHON, "manage.py", "shell", "-c", SEED],
        cwd=ROOT,
        env=stack["env"],
        check=True,
        capture_output=True,
    )
    agent, conversation = made.stdout.decode().strip().splitlines()[-1].split()
    sign_in(page, "developer@acme.test")
    page.goto(f"/orgs/acme/agents/{agent}/")
    page.get_by_role("link", name="Tests", exact=True).click()
    page.locator("#suite-name").fill("Tab regression")  # other tests leave suites with cases here
    page.get_by_role("button", name="Add suite").click()
    suite = page.locator("section.suite", has_text="Tab regression")
    expect(suite).to_be_visible()

    suite.get_by_text("Add a case").click()
    suite.get_by_label("Case name").fill("greets")
    turns = suite.get_by_label("Turns (JSON)")
    turns.fill('[{"user": "hello", "expect": [{"type": "similar_to", "value": "Hi", "threshold": 3}]}]')
    suite.get_by_role("button", name="Add case").click()
    suite = page.locator("section.suite", has_text="Tab regression")
    expect(suite.locator(".form-errors")).to_contain_text("turns.0.expect.0.threshold")
    expect(suite.get_by_label("Case name")).to_have_value("greets")  # what was typed is kept
    suite.get_by_label("Turns (JSON)").fill(
        '[{"user": "hello", "expect": [{"type": "similar_to", "value": "Hi", "threshold": 0.5}]}]'
    )
    suite.get_by_role("button", name="Add case").click()
    expect(page.locator("section.suite", has_text="Tab regression").locator("li.case")).to_have_count(1)

    page.goto(f"/orgs/acme/agents/{agent}/conversations/?open={conversation}")
    page.get_by_role("link", name="Make a test case").click()
    expect(page.locator("#make-case")).to_be_visible()
    page.locator("#to-case-suite").select_option(label="Tab regression")
    page.get_by_role("button", name="Make the test case").click()
    suite = page.locator("section.suite", has_text="Tab regression")
    expect(suite.locator("li.case")).to_have_count(2)
    expect(suite).to_contain_text("from a conversation")
    expect(suite).to_contain_text("tool_called")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "tests_tab.png"), full_page=True)
