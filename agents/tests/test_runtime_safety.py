"""One tenant, or one end user, cannot hurt another through the runtime (issue 8, section 4).

ReDoS-proof patterns, and (further down) the turn writer, secrets through tools and
end users steering outbound calls.
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import textwrap
from pathlib import Path
from urllib.parse import quote

import pytest

from accounts.services.auth import token_create
from agents.models import Component, Conversation, Turn
from agents.runtime.compile import CACHE, compile_working_copy
from agents.runtime.masking import Masker
from agents.runtime.patterns import Pattern, PatternError
from agents.runtime.recorder import recorder
from agents.tests.test_runtime_builtin import final, session_for, talk
from lifecycle.asgi import application
from tests.api_mixin import assert_envelope
from tests.factories import add_component, make_agent, make_world, owner_access, skill
from tests.http_servers import Recorder
from tests.ws import WebsocketCommunicator

ROOT = Path(__file__).resolve().parents[2]
EVIL = r"^(a+)+$"
# 100 characters that backtracking `re` needs about 2**99 steps to refuse: the child
# process below would never end without the linear-time engine, so it is killed and the
# test fails instead of hanging the suite.
EVIL_TEXT = "a" * 99 + "!"

# The engine, from compiled rows to the final answer, without a database: in a child
# process, so a backtracking match (which holds the GIL) can be killed from outside.
CHILD = textwrap.dedent(
    """
    import asyncio, django, json, os
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lifecycle.settings_test")
    django.setup()
    from agents.runtime.compile import compile_rows
    from agents.runtime.session import Session

    rows = [
        ("00000000-0000-4000-8000-000000000001", "skill", "evil", {
            "patterns": [%(evil)r], "responses": ["matched"],
        }),
        ("00000000-0000-4000-8000-000000000002", "skill", "slot", {
            "patterns": ["^ask"], "responses": ["slot {{code}}"],
            "slots": {"code": {"type": "string", "pattern": %(evil)r}},
        }),
        ("00000000-0000-4000-8000-000000000003", "settings", "settings", {"fallback": "fallback"}),
    ]
    compiled = compile_rows("a", 1, False, rows)

    async def talk(text):
        session = Session(conversation_id="c0ffee00-0000-4000-8000-000000000001", compiled=compiled)
        events = [e async for e in session.respond(text)]
        return next(e["text"] for e in events if e["type"] == "agent_response")

    print(json.dumps([
        asyncio.run(talk(%(text)r)),
        asyncio.run(talk("ask " + %(text)r)),
        asyncio.run(talk("aaaa")),
    ]))
    """
) % {"evil": EVIL, "text": EVIL_TEXT}


def test_an_evil_pattern_answers_a_long_message_at_once():
    try:
        done = subprocess.run(
            [sys.executable, "-c", CHILD], cwd=ROOT, capture_output=True, text=True, timeout=60
        )
    except subprocess.TimeoutExpired:
        pytest.fail("a catastrophic-backtracking pattern stalled the engine (ReDoS)")
    assert done.returncode == 0, done.stderr[-2000:]
    # No match for the 100 characters; the slot's pattern does not match either (so the
    # slot is not filled); a plain run of a's matches the evil pattern as it should.
    assert done.stdout.strip().splitlines()[-1] == '["fallback", "slot ", "matched"]'


@pytest.mark.parametrize(
    ("pattern", "why"),
    [(r"(a)\1", "backreference"), (r"(?=order)\w+", "lookahead"), (r"(?<!x)y", "lookbehind")],
)
def test_patterns_the_engine_cannot_run_are_refused_at_the_field(world, pattern, why):
    agent = make_agent(world.acme)
    url = f"/api/v1/orgs/{world.acme.slug}/agents/{agent.pk}/components/"
    client = world.client("developer")
    body = {"kind": "skill", "name": "s", "spec": skill(patterns=["fine", pattern])}
    fields = assert_envelope(client.post(url, body, format="json"), 400, "invalid")["error"]["fields"]
    assert "spec.patterns.1" in fields and "RE2" in fields["spec.patterns.1"][0], (why, fields)
    slot = {"kind": "skill", "name": "s", "spec": skill(slots={"code": {"pattern": pattern}})}
    fields = assert_envelope(client.post(url, slot, format="json"), 400, "invalid")["error"]["fields"]
    assert "spec.slots.code.pattern" in fields, fields
    assert not Component.objects.for_org(world.acme).filter(agent=agent, name="s").exists()


def test_a_stored_pattern_re2_refuses_is_skipped_with_a_warning(world, caplog):
    CACHE.clear()
    agent = make_agent(world.acme)
    component = add_component(agent, "skill", "old", skill(["hello"], patterns=[r"order (\d+)"]))
    # Saved before the RE2 rule: written past validation, as an old row would be.
    stored = {**component.spec, "patterns": [r"(o)\1rder", r"order (\d+)"]}
    Component.objects.for_org(world.acme).filter(pk=component.pk).update(spec=stored)
    agent.refresh_from_db()
    with caplog.at_level(logging.WARNING, logger="agents.runtime.patterns"):
        compiled = compile_working_copy(agent)
    skill_ = next(s for s in compiled.skills if s.name == "old")
    assert [p.source for p in skill_.patterns] == [r"order (\d+)"]
    assert "RE2 cannot run" in caplog.text


def test_the_pattern_wrapper_matches_like_re_did():
    match = Pattern(r"order\s*#?\s*(?P<order_id>\d{3,})").search("Where is ORDER #12345?")
    assert match.groupdict() == {"order_id": "12345"} and match.group(0) == "ORDER #12345"
    assert Pattern("x").search("\ud800 x").group(0) == "x"  # never raises on bad text
    with pytest.raises(PatternError):
        Pattern(r"(a)\1")


# --- the console's edge and its shared turn writer -------------------------------------
async def _connect(url):
    communicator = WebsocketCommunicator(application, url)
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def _frames_until(communicator, kind: str, timeout: float = 5) -> list[dict]:
    seen = []
    while True:
        frame = json.loads(await communicator.receive_from(timeout=timeout))
        seen.append(frame)
        if frame["type"] == kind:
            return seen


def _console_world():
    CACHE.clear()
    world = make_world()
    consoles = {}
    for org in (world.acme, world.globex):
        agent = make_agent(org, "Console bot")
        add_component(agent, "skill", "greet", skill(["hello"], ["Hi {{name}}!"]))
        owner = owner_access(org).user
        consoles[org.slug] = (agent, token_create(user=owner, name="ws")[1])
    return world, consoles


def _url(org_slug, agent, key):
    return f"/ws/orgs/{org_slug}/agents/{agent.pk}/conversation/?token={key}"


@pytest.mark.django_db(transaction=True)
async def test_unstorable_text_in_any_frame_field_is_an_error_frame_and_the_socket_stays_open(settings):
    settings.WS_MAX_FRAME_BYTES = 1024 * 1024  # so the deep frame reaches the parser
    _world, consoles = await asyncio.to_thread(_console_world)
    agent, key = consoles["acme"]
    communicator = await _connect(_url("acme", agent, key))
    deep = '{"type": "user_message", "text": ' + "[" * 100_000 + "]" * 100_000 + "}"
    cases = [
        ('{"type": "user_message", "text": "hi \\ud800"}', "invalid"),
        ('{"type": "user_message", "text": "hi \\u0000"}', "invalid"),
        ('{"type": "contextual_update", "text": "\\udfff"}', "invalid"),
        (
            json.dumps({"type": "conversation_initiation_client_data", "dynamic_variables": {"n": "a\x00"}}),
            "invalid",
        ),
        ('{"type": "conversation_initiation_client_data", "dynamic_variables": {"\\ud800": "x"}}', "invalid"),
        (
            '{"type": "conversation_initiation_client_data",'
            ' "conversation_config_override": {"agent": {"first_message": "\\ud83d"}}}',
            "invalid",
        ),
        ('{"type": "save_test_result", "rating": 3, "notes": "\\u0000"}', "invalid"),
        (deep, "malformed"),
        ('{"type": "user_message", "text": ' + "[" * 30 + "]" * 30 + "}", "invalid"),
    ]
    for raw, code in cases:
        await communicator.send_to(text_data=raw)
        frame = json.loads(await communicator.receive_from(timeout=5))
        assert (frame["type"], frame["code"]) == ("error", code), raw[:120]
    # Bytes that are not UTF-8 are refused, not decoded with replacement characters.
    await communicator.send_input(
        {"type": "websocket.receive", "bytes": b'{"type": "user_message", "text": "\xff"}'}
    )
    frame = json.loads(await communicator.receive_from(timeout=5))
    assert (frame["type"], frame["code"]) == ("error", "invalid")
    await communicator.send_json_to(
        {"type": "conversation_initiation_client_data", "dynamic_variables": {"name": "Ada"}}
    )
    await _frames_until(communicator, "agent_response")
    await communicator.send_json_to({"type": "user_message", "text": "hello"})
    assert (await _frames_until(communicator, "agent_response"))[-1]["text"] == "Hi Ada!"
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_poisoned_turn_loses_only_itself_not_another_orgs_conversation():
    world, consoles = await asyncio.to_thread(_console_world)
    sockets = {}
    for slug, (agent, key) in consoles.items():
        sockets[slug] = await _connect(_url(slug, agent, key))
        await sockets[slug].send_json_to({"type": "user_message", "text": "hello"})
        sockets[slug].started = await _frames_until(sockets[slug], "conversation_initiation_metadata")
    for communicator in sockets.values():
        await _frames_until(communicator, "agent_response")  # the first message
        await _frames_until(communicator, "agent_response")  # the answer
    ids = {slug: s.started[-1]["conversation_id"] for slug, s in sockets.items()}
    poisoned_conversation = await asyncio.to_thread(
        lambda: Conversation.objects.for_org(world.acme).get(pk=ids["acme"])
    )
    # Straight into the shared writer, past the edge's validation, in the same batch as
    # the other org's turns: text no database can store.
    recorder().add(poisoned_conversation, [{"index": 99, "role": "user", "text": "bad \ud800"}], None)
    for _ in range(5):  # more turns for both, batched with the poisoned one
        for communicator in sockets.values():
            await communicator.send_json_to({"type": "user_message", "text": "hello"})
        for communicator in sockets.values():
            await _frames_until(communicator, "agent_response")
    for communicator in sockets.values():
        await communicator.send_json_to({"type": "end_conversation"})
        await _frames_until(communicator, "conversation_ended")
        await communicator.disconnect()

    def stored(org, cid):
        return list(
            Turn.objects.for_org(org)
            .filter(conversation_id=cid)
            .order_by("index")
            .values_list("index", "role")
        )

    globex = await asyncio.to_thread(stored, world.globex, ids["globex"])
    acme = await asyncio.to_thread(stored, world.acme, ids["acme"])
    # Each: the first message, then 6 exchanges of two turns.
    assert len(globex) == 13 and [i for i, _ in globex] == list(range(13))
    assert [i for i, _ in acme] == list(range(13)), "only the poisoned row is lost"


# --- secrets through tools, and end users steering outbound calls ------------------------
SECRET = "sk-live-canary-0123456789"


def echo_headers(recorder, request):
    """A webhook that hands back what it was sent, as careless ones do."""
    headers = request["headers"]
    return 200, {"auth": headers.get("Authorization"), "headers": headers, "path": request["path"]}, 0


def _echo_agent(org, url):
    agent = make_agent(org, "Echo bot")
    add_component(agent, "variable", "CRM_API_KEY", {"value": SECRET, "secret": True})
    add_component(agent, "variable", "TENANT", {"value": "acme", "secret": False})
    add_component(
        agent,
        "tool",
        "echo",
        {
            "description": "Echoes",
            "webhook_url": url + "/{{TENANT}}/orders/{{order}}",
            "headers": {"Authorization": "Bearer {{CRM_API_KEY}}"},
        },
    )
    add_component(
        agent,
        "skill",
        "echo",
        skill(
            patterns=[r"^order (?P<order>.+)$"],
            responses=["Seen: {{tool.auth}} {{tool.headers}}"],
            tool="echo",
        ),
    )
    return agent


@pytest.mark.django_db(transaction=True)
async def test_a_secret_echoed_by_a_tool_reaches_no_frame_turn_or_api_detail_of_a_viewer():
    CACHE.clear()
    world = await asyncio.to_thread(make_world)
    with Recorder(echo_headers) as server:
        agent = await asyncio.to_thread(_echo_agent, world.acme, server.url)
        viewer = world.users["viewer"]
        key = await asyncio.to_thread(lambda: token_create(user=viewer, name="ws")[1])
        communicator = await _connect(_url("acme", agent, key))
        await communicator.send_json_to({"type": "user_message", "text": "order 42"})
        raw, answers = [], 0
        while answers < 2:  # the first message, then the answer
            raw.append(await communicator.receive_from(timeout=10))
            answers += json.loads(raw[-1])["type"] == "agent_response"
        await communicator.send_json_to({"type": "end_conversation"})
        await _frames_until(communicator, "conversation_ended")
        await communicator.disconnect()
    # The secret was used: the webhook got it.
    assert server.requests[0]["headers"]["Authorization"] == f"Bearer {SECRET}"
    frames = [json.loads(r) for r in raw]
    result = next(f for f in frames if f["type"] == "tool_result")["result"]
    assert result["auth"] == "Bearer ••••••" and result["path"] == "/acme/orders/42"
    assert frames[-1]["text"].startswith("Seen: Bearer ••••••")
    assert SECRET not in "".join(raw)
    cid = frames[0]["conversation_id"]

    def stored():
        turns = list(Turn.objects.for_org(world.acme).filter(conversation_id=cid).values("text", "details"))
        detail = world.client("viewer").get(f"/api/v1/orgs/acme/agents/{agent.pk}/conversations/{cid}/")
        assert detail.status_code == 200, detail.content
        return json.dumps(turns, ensure_ascii=False), detail.content.decode()

    turns, detail = await asyncio.to_thread(stored)
    assert "••••••" in turns and SECRET not in turns
    assert "••••••" in detail and SECRET not in detail


def test_end_users_cannot_steer_a_webhook_url_or_override_stage_variables(world):
    CACHE.clear()
    with Recorder(echo_headers) as server:
        agent = _echo_agent(world.acme, server.url)
        # The client's variables name the stage's own: they must not win.
        session = session_for(agent, variables={"CRM_API_KEY": "attacker", "TENANT": "globex"})
        answers = [
            final(talk(session, text))["text"]
            for text in ("order ../../internal/admin?x=1#", "order ..", "order a b/c")
        ]
    paths = [r["path"] for r in server.requests]
    assert paths == [
        "/acme/orders/..%2F..%2Finternal%2Fadmin%3Fx%3D1%23",
        "/acme/orders/%2E%2E",
        "/acme/orders/a%20b%2Fc",
    ]
    assert {r["headers"]["Authorization"] for r in server.requests} == {f"Bearer {SECRET}"}
    assert all(SECRET not in a and "attacker" not in a for a in answers)


def test_a_slot_named_like_a_stage_variable_does_not_replace_it(world):
    CACHE.clear()
    with Recorder(echo_headers) as server:
        agent = _echo_agent(world.acme, server.url)
        add_component(
            agent,
            "skill",
            "tenant",
            skill(
                patterns=[r"^switch to (?P<TENANT>\w+) order (?P<order>\w+)$"], responses=["ok"], tool="echo"
            ),
        )
        CACHE.clear()
        talk(session_for(agent), "switch to globex order 7")
    assert server.requests[0]["path"] == "/acme/orders/7"


def test_a_secret_split_across_streamed_deltas_is_still_masked(world):
    def model(recorder, request):
        def body(_):
            for piece in ("Your key is sk-li", "ve-canary-01", "23456789, keep it safe."):
                yield f"data: {json.dumps({'choices': [{'delta': {'content': piece}}]})}\n\n"
            yield "data: [DONE]\n\n"

        return 200, body, 0

    CACHE.clear()
    with Recorder(model) as server:
        agent = make_agent(
            world.acme, "LLM", settings={"instructions": "x", "engine": "openai", "model": "m"}
        )
        add_component(agent, "variable", "OPENAI_BASE_URL", {"value": server.url + "/v1", "secret": False})
        add_component(agent, "variable", "OPENAI_API_KEY", {"value": SECRET, "secret": True})
        session = session_for(agent)
        events = talk(session, "what is my key?")
    streamed = "".join(e["delta"] for e in events if e["type"] == "agent_response_delta")
    assert streamed == final(events)["text"] == "Your key is ••••••, keep it safe."
    assert SECRET not in json.dumps(session.pending)


@pytest.mark.parametrize("secret", ["plain-secret-value", "quo'te\"back\\slash", "tab\there-1234"])
def test_the_masker_finds_a_secret_anywhere_in_a_value(secret):
    masker = Masker([secret, "abc"])  # too short to mask: left alone
    value = {"a": [1, {"k": f"x{secret}y", secret: None}], "b": ("abc", quote(secret, safe=""))}
    masked = masker.mask(value)
    assert masked == {"a": [1, {"k": "x••••••y", "••••••": None}], "b": ["abc", "••••••"]}
    assert masker.mask({"nothing": "here"}) == {"nothing": "here"}
    assert value["a"][1]["k"] == f"x{secret}y"  # the input is not changed
