"""The spec schema of each component kind, as DRF serializers (field-level errors).

`validate_spec(kind, spec)` returns the normalised spec or raises a ValidationError
whose paths start at `spec.` (e.g. `spec.utterances.0`).
"""

from __future__ import annotations

import re

from django.core.validators import URLValidator
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from rest_framework import serializers

from lifecycle.serializers import SafeJSONField, StrictSerializer

from .components import KIND_NAMES, PULLED_LIVE_AGENT_MESSAGES, SETTINGS
from .runtime import patterns

TEXT = 20_000
KNOWLEDGE_BODY_MAX = 100 * 1024
VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
TEMPLATE_VARIABLE = re.compile(r"{{\s*([A-Za-z_][A-Za-z0-9_.]*)\s*}}")
HTTP_URL = URLValidator(schemes=["http", "https"])


def _strings(max_length: int, *, min_items: int = 0, max_items: int = 500, **list_kwargs):
    return serializers.ListField(
        child=serializers.CharField(max_length=max_length),
        min_length=min_items,
        max_length=max_items,
        **list_kwargs,
    )


class SettingsSpec(StrictSerializer):
    instructions = serializers.CharField(max_length=TEXT, allow_blank=True, default="")
    first_message = serializers.CharField(max_length=2000, allow_blank=True, default="")
    language = serializers.RegexField(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$", max_length=16, default="en")
    engine = serializers.ChoiceField(choices=["builtin", "openai"], default="builtin")
    model = serializers.CharField(max_length=100, allow_blank=True, required=False)
    temperature = serializers.FloatField(min_value=0, max_value=2, required=False)
    fallback = serializers.CharField(
        max_length=2000,
        required=False,
        help_text="What the builtin engine says when nothing matches.",
    )
    # Topics the agent must not discuss: the red team's off_policy canaries.
    denied_topics = _strings(
        200, max_items=50, required=False, help_text="Topics the agent must not discuss."
    )


class SlotSpec(StrictSerializer):
    type = serializers.ChoiceField(choices=["string", "number", "email", "date", "choice"], default="string")
    required = serializers.BooleanField(default=False)
    choices = _strings(200, max_items=100, required=False)
    prompt = serializers.CharField(max_length=500, required=False, allow_blank=True)
    pattern = serializers.CharField(max_length=500, required=False)

    def validate_pattern(self, value):
        return _regex(value)

    def validate(self, attrs):
        if attrs.get("type") == "choice" and not attrs.get("choices"):
            raise serializers.ValidationError({"choices": ["A choice slot needs choices."]})
        return attrs


def _regex(value: str) -> str:
    # The engine runs patterns with RE2 (linear time, see runtime/patterns.py): what it
    # cannot compile (backreferences, lookarounds) is refused here, not at talk time.
    reason = patterns.check(value)
    if reason is not None:
        raise serializers.ValidationError(
            f"Not a pattern the engine can run ({reason}). Patterns use RE2 syntax: "
            "no backreferences or lookarounds."
        )
    return value


class SkillSpec(StrictSerializer):
    utterances = _strings(500, required=False, default=list)
    patterns = _strings(500, max_items=100, required=False, default=list)
    responses = _strings(5000, min_items=1, max_items=50)
    slots = serializers.DictField(child=SlotSpec(), required=False, default=dict)
    tool = serializers.CharField(max_length=200, required=False, allow_null=True)
    description = serializers.CharField(max_length=2000, required=False, allow_blank=True)

    def validate_patterns(self, value):
        errors = {}
        for index, pattern in enumerate(value):
            try:
                _regex(pattern)
            except serializers.ValidationError as exc:
                errors[index] = exc.detail
        if errors:
            raise serializers.ValidationError(errors)
        return value

    def validate_slots(self, value):
        bad = [name for name in value if not VARIABLE_NAME.match(name)]
        if bad:
            raise serializers.ValidationError(
                {name: ["Slot names are letters, digits and _."] for name in bad}
            )
        return value

    def validate(self, attrs):
        if not attrs.get("utterances") and not attrs.get("patterns"):
            raise serializers.ValidationError({"utterances": ["Give example utterances, patterns or both."]})
        return attrs


class KnowledgeSpec(StrictSerializer):
    title = serializers.CharField(max_length=200)
    body = serializers.CharField(max_length=KNOWLEDGE_BODY_MAX, trim_whitespace=False)
    source_url = serializers.URLField(
        max_length=2000, required=False, allow_blank=True, validators=[HTTP_URL]
    )
    tags = _strings(50, max_items=20, required=False)


class ToolSpec(StrictSerializer):
    description = serializers.CharField(max_length=2000)
    parameters = SafeJSONField(default=dict)
    webhook_url = serializers.URLField(max_length=2000, required=False, validators=[HTTP_URL])
    response = SafeJSONField(required=False)
    timeout_seconds = serializers.FloatField(min_value=0.1, max_value=30, required=False)
    retries = serializers.IntegerField(min_value=0, max_value=5, required=False)
    headers = serializers.DictField(
        child=serializers.CharField(max_length=2000),
        required=False,
        help_text="Sent with the webhook call; values may use {{VARIABLE}}, secrets included.",
    )

    def validate_parameters(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("Parameters are a JSON schema object.")
        try:
            Draft202012Validator.check_schema(value)
        except SchemaError as exc:
            raise serializers.ValidationError(f"Not a valid JSON schema: {exc.message}") from exc
        return value

    def validate(self, attrs):
        has_url, has_response = "webhook_url" in attrs, "response" in attrs
        if has_url == has_response:
            raise serializers.ValidationError(
                {"webhook_url": ["Give exactly one of webhook_url (call it) or response (canned)."]}
            )
        return attrs


class VariableSpec(StrictSerializer):
    # Optional: a secret's value is write-only, so an update may leave it out to keep it
    # (API.md); a new plain variable without one is empty.
    value = serializers.CharField(
        max_length=10_000, allow_blank=True, allow_null=True, trim_whitespace=False, required=False
    )
    secret = serializers.BooleanField(default=False)


class ChannelSpec(StrictSerializer):
    type = serializers.ChoiceField(choices=["web", "api", "phone"])
    config = SafeJSONField(default=dict)

    def validate_config(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("Expected an object.")
        return value


class PersonaSpec(StrictSerializer):
    description = serializers.CharField(max_length=5000)


class NotificationSpec(StrictSerializer):
    events = _strings(100, min_items=1, max_items=50)
    target = serializers.CharField(max_length=2000)


LIVE_AGENT_MESSAGE_TYPES = sorted(
    PULLED_LIVE_AGENT_MESSAGES | {"queue_position", "offline", "transfer_failed"}
)


class LiveAgentMessageSpec(StrictSerializer):
    type = serializers.ChoiceField(choices=LIVE_AGENT_MESSAGE_TYPES)
    text = serializers.CharField(max_length=2000)


SPEC_SERIALIZERS: dict[str, type[serializers.Serializer]] = {
    "settings": SettingsSpec,
    "skill": SkillSpec,
    "knowledge": KnowledgeSpec,
    "tool": ToolSpec,
    "variable": VariableSpec,
    "channel": ChannelSpec,
    "persona": PersonaSpec,
    "notification": NotificationSpec,
    "live_agent_message": LiveAgentMessageSpec,
}
assert set(SPEC_SERIALIZERS) == set(KIND_NAMES), "every kind needs a spec schema"


def validate_spec(kind: str, spec, *, field: str = "spec") -> dict:
    """The normalised spec, or a ValidationError with paths under `field` (spec.utterances.0)."""
    serializer = SPEC_SERIALIZERS[kind](data=spec)
    if not serializer.is_valid():
        raise serializers.ValidationError({field: serializer.errors})
    return _plain(serializer.validated_data)


def validate_name(kind: str, name: str) -> str:
    name = (name or "").strip()
    if kind == SETTINGS:
        return SETTINGS
    if not name:
        raise serializers.ValidationError({"name": ["This field may not be blank."]})
    if kind == "variable" and not VARIABLE_NAME.match(name):
        raise serializers.ValidationError(
            {"name": ["A variable's name is its key: letters, digits and _, not starting with a digit."]}
        )
    return name


def _plain(value):
    """OrderedDicts and friends → plain JSON types, for stable hashing and storage."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def template_variables(text: str) -> set[str]:
    return set(TEMPLATE_VARIABLE.findall(text or ""))
