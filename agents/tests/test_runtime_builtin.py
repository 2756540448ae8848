"""The builtin engine on the demo agent: intents, slots, grounding, tools, templates."""

import asyncio

import pytest

from accounts.demo import seed_demo_org
from agents.demo import seed_demo_agent
from agents.models import Component
from agents.runtime.compile import CACHE, compile_working_copy
from agents.runtime.session import Session
from agents.services.components import component_update
from lifecycle.access import access_for
from tests.factories import add_component, make_agent, skill
from tests.http_servers import Recorder


@pytest.fixture
def demo(db):
    CACHE.clear()
    org, _ = seed_demo_org()
    return seed_demo_agent(org)


def session_for(agent, **kwargs):
    return Session(
        conversation_id="c0ffee00-0000-4000-8000-000000000001", compiled=compile_working_copy(agent), **kwargs
    )


def talk(session, text):
    async def run():
        return [event async for event in session.respond(text)]

    return asyncio.run(run())


def final(events):
    return next(e for e in events if e["type"] == "agent_response")


def test_first_message_and_pattern_with_slot_and_tool(demo):
    session = session_for(demo, stream_delay=0.001)  # paced, as in the console: word by word
    assert session.first_message()["text"].startswith("Hi! I'm Acme's support assistant")
    events = talk(session, "Where is order #12345?")
    kinds = [e["type"] for e in events]
    assert kinds[:2] == ["tool_call", "tool_result"] and kinds[-1] == "agent_response"
    assert events[0]["tool_name"] == "lookup_order" and events[0]["parameters"] == {"order_id": "12345"}
    assert final(events)["text"] == "Order 12345 has shipped and should arrive in 2 days with ParcelCo."
    deltas = [e["delta"] for e in events if e["type"] == "agent_response_delta"]
    assert "".join(deltas) == final(events)["text"] and len(deltas) == 12


def test_unpaced_sends_the_whole_answer_as_one_delta_before_the_final(demo):
    events = talk(session_for(demo), "hello")
    assert [e["type"] for e in events] == ["agent_response_delta", "agent_response"]
    assert events[0]["delta"] == events[1]["text"] == "Hello! How can I help you today?"


def test_a_missing_slot_is_asked_for_then_filled(demo):
    session = session_for(demo)
    asked = final(talk(session, "where is my order"))
    assert asked["text"] == "What is your order number?"
    answered = talk(session, "It's 98765")
    assert final(answered)["text"] == "Order 98765 has shipped and should arrive in 2 days with ParcelCo."
    assert next(e for e in answered if e["type"] == "tool_call")["parameters"] == {"order_id": "98765"}


def test_knowledge_grounding_names_its_source(demo):
    events = talk(session_for(demo), "How many days do I have to return an item?")
    response = final(events)
    assert "30 days" in response["text"]
    assert [s["title"] for s in response["sources"]] == ["Returns policy"]


def test_templates_use_variables_but_never_echo_secrets(demo):
    access = access_for(demo.owner, demo.org)
    handoff = Component.objects.for_org(demo.org).get(agent=demo, name="human_handoff")
    component_update(
        access=access,
        component=handoff,
        spec=skill(["talk to a person"], ["Write to {{SUPPORT_EMAIL}} (key {{CRM_API_KEY}}), {{name}}."]),
    )
    session = session_for(demo, variables={"name": "Ada"})
    text = final(talk(session, "talk to a person please"))["text"]
    assert "support@acme.test" in text and "Ada" in text
    assert "dev-crm-key-not-for-production" not in text and "••••" in text


def test_fallback_and_determinism(demo):
    assert final(talk(session_for(demo), "blorp zzz"))["text"].startswith("Sorry, I did not get that")
    runs = [
        [(e["type"], e.get("delta") or e.get("text")) for e in talk(session_for(demo), "hello there")]
        for _ in range(3)
    ]
    assert runs[0] == runs[1] == runs[2]
    assert runs[0][-1] == ("agent_response", "Hello! How can I help you today?")


def webhook_agent(org, url, **tool_extra):
    agent = make_agent(org, "Webhooked")
    add_component(
        agent,
        "tool",
        "lookup",
        {
            "description": "d",
            "parameters": {"type": "object", "properties": {"id": {"type": "string"}}},
            "webhook_url": url,
            "headers": {"X-Key": "{{API_KEY}}"},
            **tool_extra,
        },
    )
    add_component(agent, "variable", "API_KEY", {"value": "hook-secret", "secret": True})
    add_component(
        agent,
        "skill",
        "status",
        skill(["status"], ["It is {{tool.state}}."], patterns=[r"status (?P<id>\w+)"], tool="lookup"),
    )
    return agent


def test_tool_webhook_success_sends_idempotency_key_and_secret_header(world):
    def handler(recorder, request):
        return 200, {"state": "delivered"}, 0

    with Recorder(handler) as server:
        agent = webhook_agent(world.acme, server.url + "/hook")
        events = talk(session_for(agent), "status A1")
    assert final(events)["text"] == "It is delivered."
    (request,) = server.requests
    call_id = next(e for e in events if e["type"] == "tool_call")["tool_call_id"]
    assert request["headers"]["Idempotency-Key"] == call_id
    assert request["headers"]["X-Key"] == "hook-secret"
    assert request["body"]["parameters"] == {"id": "A1"}
    assert "hook-secret" not in str(events)


def test_tool_webhook_5xx_is_retried_then_surfaces_an_error(world):
    def handler(recorder, request):
        return (503, {"error": "busy"}, 0) if len(recorder.requests) < 3 else (200, {"state": "late"}, 0)

    with Recorder(handler) as server:
        agent = webhook_agent(world.acme, server.url + "/hook", retries=2)
        events = talk(session_for(agent), "status A1")
    assert final(events)["text"] == "It is late." and len(server.requests) == 3
    assert len({r["headers"]["Idempotency-Key"] for r in server.requests}) == 1

    with Recorder(lambda recorder, request: (500, {}, 0)) as server:
        agent2 = webhook_agent(world.acme, server.url + "/hook", retries=1)
        events = talk(session_for(agent2), "status A1")
    result = next(e for e in events if e["type"] == "tool_result")
    assert "error" in result and len(server.requests) == 2
    assert any(e["type"] == "error" and e["code"] == "tool_failed" for e in events)
    assert final(events)["text"].startswith("Sorry, I could not complete that")


def test_tool_webhook_4xx_and_timeouts_are_not_retried(world):
    with Recorder(lambda recorder, request: (404, {}, 0)) as server:
        events = talk(session_for(webhook_agent(world.acme, server.url + "/hook")), "status A1")
    assert (
        len(server.requests) == 1
        and next(e for e in events if e["type"] == "tool_result")["error"] == "lookup answered 404."
    )
    with Recorder(lambda recorder, request: (200, {"state": "slow"}, 1.0)) as server:
        events = talk(
            session_for(webhook_agent(world.acme, server.url + "/hook", timeout_seconds=0.2)), "status A1"
        )
    assert len(server.requests) == 1
    assert "did not answer within 0.2 s" in next(e for e in events if e["type"] == "tool_result")["error"]


def test_private_addresses_are_refused_unless_allowed(world, settings):
    settings.OUTBOUND_ALLOWED_HOSTS = []
    with Recorder(lambda recorder, request: (200, {"state": "x"}, 0)) as server:
        events = talk(session_for(webhook_agent(world.acme, server.url + "/hook")), "status A1")
    assert server.requests == []
    assert "not a public address" in next(e for e in events if e["type"] == "tool_result")["error"]
