"""One tenant, or one end user, cannot hurt another through the runtime (issue 8, section 4).

ReDoS-proof patterns, and (further down) the turn writer, secrets through tools and
end users steering outbound calls.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from agents.models import Component
from agents.runtime.compile import CACHE, compile_working_copy
from agents.runtime.patterns import Pattern, PatternError
from tests.api_mixin import assert_envelope
from tests.factories import add_component, make_agent, skill

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
