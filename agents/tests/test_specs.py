"""Spec validation per kind: good and bad, hand-written and generated."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.exceptions import ValidationError

from agents.components import POLICY, OnPull
from agents.secrets import content_hash
from agents.specs import validate_name, validate_spec
from lifecycle.errors import flatten_fields

GOOD = {
    "settings": {
        "instructions": "Be kind.",
        "first_message": "Hi",
        "language": "en-US",
        "engine": "openai",
        "model": "gpt-4o-mini",
        "temperature": 0.3,
    },
    "skill": {
        "utterances": ["where is my order"],
        "patterns": [r"order\s+#?(\d+)"],
        "responses": ["Order {{order_id}} ships today."],
        "slots": {"order_id": {"type": "string", "required": True, "prompt": "Which order?"}},
    },
    "knowledge": {"title": "Returns", "body": "30 days. " * 100},
    "tool": {
        "description": "Look up an order",
        "parameters": {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]},
        "webhook_url": "https://example.com/hook",
    },
    "variable": {"value": "https://crm.example.com", "secret": False},
    "channel": {"type": "web", "config": {"color": "#003366"}},
    "persona": {"description": "Cheerful and brief."},
    "notification": {"events": ["promotion.succeeded"], "target": "ops@example.com"},
    "live_agent_message": {"type": "working_hours", "text": "We are open 9 to 5."},
}

BAD = {
    "settings": ({"engine": "gpt"}, {"spec.engine"}),
    "skill": ({"utterances": [], "responses": ["x"]}, {"spec.utterances"}),
    "knowledge": ({"title": "T", "body": "x" * (100 * 1024 + 1)}, {"spec.body"}),
    "tool": (
        {"description": "d", "parameters": {"type": 12}, "webhook_url": "ftp://x", "response": "both"},
        {"spec.parameters", "spec.webhook_url"},
    ),
    "variable": ({"value": 12, "secret": "maybe"}, {"spec.value", "spec.secret"}),
    "channel": ({"type": "fax"}, {"spec.type"}),
    "persona": ({}, {"spec.description"}),
    "notification": ({"events": [], "target": "x"}, {"spec.events"}),
    "live_agent_message": ({"type": "greeting", "text": "x"}, {"spec.type"}),
}


@pytest.mark.parametrize("kind", sorted(GOOD))
def test_good_specs_pass(kind):
    assert validate_spec(kind, GOOD[kind])


@pytest.mark.parametrize("kind", sorted(BAD))
def test_bad_specs_fail_with_field_paths(kind):
    spec, paths = BAD[kind]
    with pytest.raises(ValidationError) as caught:
        validate_spec(kind, spec)
    assert set(flatten_fields(caught.value.detail)) >= paths


def test_nested_errors_have_dotted_paths():
    with pytest.raises(ValidationError) as caught:
        validate_spec(
            "skill",
            {
                "utterances": ["ok", ""],
                "responses": ["r"],
                "patterns": ["(unclosed"],
                "slots": {"when": {"type": "choice"}},
            },
        )
    assert set(flatten_fields(caught.value.detail)) == {
        "spec.utterances.1",
        "spec.patterns.0",
        "spec.slots.when.choices",
    }


def test_unknown_spec_fields_are_rejected_by_name():
    with pytest.raises(ValidationError) as caught:
        validate_spec("knowledge", {"title": "T", "body": "B", "boddy": "typo"})
    assert flatten_fields(caught.value.detail) == {"spec.boddy": ["Unknown field."]}


def test_variable_names_are_keys():
    assert validate_name("variable", "OPENAI_API_KEY") == "OPENAI_API_KEY"
    with pytest.raises(ValidationError):
        validate_name("variable", "9 lives")
    assert validate_name("settings", "anything") == "settings"


def test_policy_table_matches_the_design():
    assert {k for k, kind in POLICY.items() if kind.on_pull == OnPull.NEVER} == {
        "variable",
        "channel",
        "persona",
        "notification",
    }
    assert {k for k, kind in POLICY.items() if not kind.promotes} == {"persona", "notification"}
    assert POLICY["knowledge"].on_pull == OnPull.SELECTABLE
    lam = POLICY["live_agent_message"]
    assert lam.pulls({"type": "callback"}) and not lam.pulls({"type": "offline"})


text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=40
).filter(str.strip)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    utterances=st.lists(text, max_size=5),
    responses=st.lists(text, min_size=1, max_size=3),
    extra=st.dictionaries(
        st.sampled_from(["utterances", "responses", "patterns", "tool", "nonsense"]),
        st.one_of(st.integers(), st.none(), st.lists(st.integers(), max_size=2), text),
        max_size=2,
    ),
)
def test_generated_skill_specs_validate_or_fail_cleanly(utterances, responses, extra):
    spec = {"utterances": utterances, "responses": responses, **extra}
    try:
        clean = validate_spec("skill", spec)
    except ValidationError as exc:
        fields = flatten_fields(exc.detail)
        assert fields and all(path.startswith("spec") for path in fields)
    else:
        assert clean["responses"] and (clean["utterances"] or clean["patterns"])
        assert "nonsense" not in clean


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(
        st.text(max_size=8),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=5),
            lambda inner: (
                st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
            ),
            max_leaves=8,
        ),
        max_size=6,
    )
)
def test_generated_specs_of_every_kind_never_crash(spec):
    for kind in POLICY:
        try:
            validate_spec(kind, spec)
        except ValidationError as exc:
            assert all(path.startswith("spec") for path in flatten_fields(exc.detail))


@settings(max_examples=50, deadline=None)
@given(
    st.dictionaries(
        st.text(min_size=1, max_size=6), st.integers() | st.text(max_size=6), min_size=1, max_size=8
    )
)
def test_hashes_are_stable_under_key_reordering(spec):
    reordered = dict(reversed(list(spec.items())))
    assert content_hash("channel", "web", {"type": "web", "config": spec}) == content_hash(
        "channel", "web", {"config": reordered, "type": "web"}
    )
