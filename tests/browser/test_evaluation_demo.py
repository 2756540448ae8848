"""The evaluation walkthrough on the seeded demo data: the Test runs tab's chart over two
versions in Testing, a red-team run beside its baseline, and the Evaluation settings page."""

import json

from playwright.sync_api import expect

from .conftest import ARTIFACTS, sign_in


def shoot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def open_in_testing(page) -> None:
    page.goto("/orgs/acme/agents/?stage=testing")
    page.get_by_role("link", name="Acme Support").click()
    expect(page.get_by_role("heading", name="Acme Support")).to_be_visible()


def test_the_chart_shows_the_demo_runs_in_testing_over_two_versions(page, stack):
    sign_in(page, "tester@acme.test")
    open_in_testing(page)
    page.get_by_role("link", name="Test runs").click()
    canvas = page.locator("#accuracy-chart")
    expect(canvas).to_have_attribute("data-rendered", "true")
    box = canvas.bounding_box()
    assert box and box["width"] > 200 and box["height"] > 100
    series = json.loads(page.locator("#accuracy-series").text_content())
    testing = next(s for s in series if s["stage"] == "Testing")
    assert testing["points"] == [{"x": 1, "y": 0.9}, {"x": 2, "y": 1.0}]
    # What Chart.js drew: the Testing line's two points, in percent.
    drawn = page.evaluate(
        """() => Chart.getChart(document.getElementById('accuracy-chart')).data.datasets
                 .map(d => ({label: d.label, points: d.data.map(p => [p.x, p.y])}))"""
    )
    assert {"label": "Testing", "points": [[1, 90], [2, 100]]} in drawn
    rows = page.locator("table.test-runs tbody tr")
    expect(rows.first).to_contain_text("100 %")
    expect(rows.nth(1)).to_contain_text("90 %")
    shoot(page, "demo_test_runs_chart")


def test_a_red_team_run_shows_the_category_by_strategy_table_with_its_baseline(page, stack):
    sign_in(page, "tester@acme.test")
    open_in_testing(page)
    page.get_by_role("link", name="Red team", exact=True).click()
    # The seeded run is of v2, the live version: it is the baseline of what comes next.
    expect(page.get_by_text("This is the live version")).to_be_visible()
    form = page.locator("#red-team-form")
    for strategy in ("rot13", "leetspeak"):
        form.get_by_label(strategy, exact=True).check()
    form.get_by_label("Version").select_option("draft")
    form.get_by_role("button", name="Start red team").click()
    expect(page.locator("[data-status]")).to_have_attribute("data-status", "succeeded", timeout=120_000)
    open_in_testing(page)
    page.get_by_role("link", name="Red team", exact=True).click()
    table = page.locator("#red-team-table")
    headers = table.locator("thead th")
    expect(headers).to_have_text(["Risk category", "Strategy", "Baseline (v2)", "Draft"])
    expect(page.get_by_text("Baseline: v2, the live version's latest run.")).to_be_visible()
    body = table.locator("tbody tr")
    # Eight categories (off_policy has no denied topics here, so it has no attack) x three strategies.
    categories = set(body.locator("td:nth-child(1)").all_text_contents())
    strategies = set(body.locator("td:nth-child(2)").all_text_contents())
    assert {"prompt_injection", "system_prompt_leak", "secret_leak", "violence", "hate"} <= categories
    assert strategies == {"basic", "rot13", "leetspeak"}
    # The baseline ran every strategy: each row has a baseline rate.
    assert "—" not in body.locator("td:nth-child(3)").all_text_contents()
    shoot(page, "demo_red_team_table")


def test_the_evaluation_page_for_an_admin(page, stack):
    sign_in(page, "admin@acme.test")
    page.get_by_role("link", name="Evaluation").click()
    expect(page.get_by_role("heading", name="LLM judge")).to_be_visible()
    expect(page.get_by_text("no key stored")).to_be_visible()
    expect(page.get_by_role("button", name="Test the judge")).to_be_disabled()
    page.get_by_label("Base URL").fill("not a url")
    page.get_by_label("Model").fill("judge-mini")
    page.get_by_role("button", name="Save the judge").click()
    expect(page.get_by_text("Enter a valid URL.")).to_be_visible()
    expect(page.get_by_label("Model")).to_have_value("judge-mini")
    shoot(page, "evaluation_settings_error")
