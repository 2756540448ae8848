"""Transcripts read as a conversation: speaker, text, tool calls as small labelled blocks."""

from django.test import Client

from agents.services.testresults import test_result_record
from agents.transcripts import tool_block, transcript_turns
from tests.factories import make_agent

TRANSCRIPT = [
    {"role": "user", "text": "Where is order 42?"},
    {
        "role": "agent",
        "text": "Let me look.",
        "tool_calls": [{"type": "tool_call", "tool_name": "lookup", "parameters": {"order_id": "42"}}],
    },
    {"type": "tool_result", "tool_name": "lookup", "result": {"status": "shipped", "items": ["mug", "tea"]}},
    {"role": "agent", "text": "It shipped."},
]


def test_turns_from_a_list_and_from_text():
    turns = transcript_turns(TRANSCRIPT)
    assert [(t["speaker"], t["text"]) for t in turns] == [
        ("User", "Where is order 42?"),
        ("Agent", "Let me look."),
        ("Agent", "It shipped."),
    ]
    assert turns[1]["tools"] == [
        {"label": "Tool call", "name": "lookup", "lines": ["order_id: 42"]},
        {
            "label": "Tool result",
            "name": "lookup",
            "lines": ["items:", "  - mug", "  - tea", "status: shipped"],
        },
    ]
    text = transcript_turns("user: hi\nagent: hello\nand more")
    assert [(t["speaker"], t["text"]) for t in text] == [("User", "hi"), ("Agent", "hello\nand more")]
    assert tool_block({"type": "agent_response", "text": "x"}) is None


def test_the_results_page_shows_a_conversation_not_json(world):
    access = world.access("tester")
    agent = make_agent(world.acme, access=world.access("developer"))
    test_result_record(
        access=access, agent=agent, duration=3.0, transcript=TRANSCRIPT, rating=4, notes="", status="passed"
    )
    client = Client()
    client.force_login(world.users["developer"])
    page = client.get(f"/orgs/acme/agents/{agent.pk}/results/").content.decode()
    assert "<strong>User</strong> Where is order 42?" in page
    assert "Tool call · <code>lookup</code>" in page and "order_id: 42" in page
    assert "&quot;role&quot;" not in page and '"role"' not in page  # no JSON
