"""The test console in a browser: a streamed conversation, a tool call, a saved result."""

import json

from playwright.sync_api import expect

from .conftest import sign_in
from .test_agents import open_tab
from .test_promote_pull import shoot


def test_talk_to_the_demo_agent_and_save_a_result(page):
    frames = []
    page.on(
        "websocket", lambda ws: ws.on("framereceived", lambda payload: frames.append(json.loads(payload)))
    )
    sign_in(page, "tester@acme.test")
    page.get_by_role("link", name="Agents").click()
    page.wait_for_url("**/agents/")  # the Overview's board names agents too
    page.get_by_role("link", name="Acme Support").click()
    open_tab(page, "Test console", "**/console/")
    page.get_by_label("Dynamic variables").fill("name=Ada")
    page.get_by_role("button", name="Start").click()
    transcript = page.locator("#transcript")
    expect(transcript.locator("li.agent.done").first).to_contain_text("Hi! I'm Acme's support assistant")

    page.get_by_label("Message", exact=True).fill("Where is order 12345?")
    page.get_by_role("button", name="Send").click()
    expect(transcript.locator("li.agent.done").nth(1)).to_have_text(
        "Order 12345 has shipped and should arrive in 2 days with ParcelCo."
    )
    expect(page.locator("#events")).to_contain_text("tool call lookup_order")
    expect(page.locator("#events")).to_contain_text('tool result {"status":"shipped"')

    page.get_by_label("Message", exact=True).fill("How many days do I have to return an item?")
    page.get_by_role("button", name="Send").click()
    answer = transcript.locator("li.agent.done").nth(2)
    expect(answer).to_contain_text("30 days")
    expect(answer).to_contain_text("Source: Returns policy")

    shoot(page, "console")
    deltas = [f for f in frames if f["type"] == "agent_response_delta"]
    assert len(deltas) > 10, "the answers arrived word by word"
    seqs = [f["seq"] for f in frames]
    assert seqs == sorted(seqs)

    page.get_by_label("Rating").select_option("5")
    page.get_by_label("Notes").fill("Found the order and cited the policy.")
    page.get_by_role("button", name="Save result").click()
    page.get_by_role("link", name="Saved. See the agent's test results.").click()
    row = page.get_by_role("row").filter(has_text="Found the order and cited the policy.")
    expect(row).to_contain_text("tester@acme.test")
    expect(row).to_contain_text("5/5")
    expect(row).to_contain_text("passed")

    # The conversation itself is on record, turn by turn, with the tool call and the source.
    open_tab(page, "Conversations", "**/conversations/")
    row = page.get_by_role("row").filter(has_text="tester@acme.test").first
    expect(row).to_contain_text("console")
    expect(row).to_contain_text("5/5")  # the saved result's rating
    row.get_by_role("link").click()
    turns = page.locator("ol.turns")
    for _ in range(20):  # the console writes turns in the background: give it a moment
        if "tool lookup_order" in (turns.text_content() if turns.count() else ""):
            break
        page.wait_for_timeout(250)
        page.reload()
    expect(turns).to_contain_text("Order 12345 has shipped")
    expect(turns).to_contain_text("tool lookup_order")
    expect(turns).to_contain_text("source: Returns policy")
    shoot(page, "conversations")
