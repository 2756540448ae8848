"""The Test runs tab: run a suite on a version, follow it, read the failing expectation, see the chart."""

import subprocess

from playwright.sync_api import expect

from .conftest import ARTIFACTS, PYTHON, ROOT, sign_in

SEED = """
from agents.models import Agent
from rollouts.models import TestCase, TestSuite
agent = Agent.objects.for_org_slug("acme").get(name="Acme Support", stage__slug="development")
suite = TestSuite.objects.create(org_id=agent.org_id, lineage_id=agent.lineage_id, name="Browser regression")
TestCase.objects.create(org_id=agent.org_id, suite=suite, name="order status", position=0, turns=[
    {"user": "Where is order #12345?", "expect": [{"type": "intent", "value": "order_status"},
     {"type": "contains", "value": "shipped"}]}])
TestCase.objects.create(org_id=agent.org_id, suite=suite, name="greets with a refund", position=1, turns=[
    {"user": "hello", "expect": [{"type": "contains", "value": "refund"}]}])
print(agent.pk)
"""


def test_run_a_suite_and_see_results_and_chart(page, stack):
    made = subprocess.run(
        [PYTHON, "manage.py", "shell", "-c", SEED],
        cwd=ROOT,
        env=stack["env"],
        check=True,
        capture_output=True,
    )
    agent = made.stdout.decode().strip().splitlines()[-1]
    sign_in(page, "developer@acme.test")
    page.goto(f"/orgs/acme/agents/{agent}/")
    page.get_by_role("link", name="Test runs").click()
    expect(page.locator("#no-chart")).to_be_visible()
    page.get_by_label("Suite", exact=True).select_option(label="Browser regression")
    # The latest saved version is preselected (v1 is the empty agent as first created).
    expect(page.get_by_label("Version", exact=True)).not_to_have_value("draft")
    page.get_by_role("button", name="Run").click()
    # The operation page follows the run to its end.
    expect(page.get_by_text("succeeded").first).to_be_visible(timeout=60_000)
    page.goto(f"/orgs/acme/agents/{agent}/test-runs/")
    row = page.locator("table.test-runs tbody tr").first
    expect(row).to_contain_text("50 %")
    canvas = page.locator("#accuracy-chart")
    expect(canvas).to_have_attribute("data-rendered", "true")
    box = canvas.bounding_box()
    assert box and box["width"] > 200 and box["height"] > 100
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "test_runs_chart.png"), full_page=True)
    row.get_by_role("link").click()
    expect(page.locator("#run-accuracy")).to_have_text("50 %")
    failed = page.locator("tr.case-failed")
    expect(failed).to_have_count(1)
    expect(failed.locator(".failed-expectation")).to_contain_text("contains")
    expect(failed.locator(".failed-expectation")).to_contain_text("refund")
    expect(page.locator("tr.case-passed")).to_have_count(1)
    page.screenshot(path=str(ARTIFACTS / "test_run_detail.png"), full_page=True)
