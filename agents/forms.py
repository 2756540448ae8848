"""UI forms for each component kind. Each turns itself into a spec; the services validate.

Lists are one item per line; JSON fields are JSON. A service's field error such as
`spec.utterances.0` lands next to the form field it came from.
"""

from __future__ import annotations

import json

from django import forms

from lifecycle.parsers import TOO_DEEP_MESSAGE, json_problem

from .components import KIND_NAMES
from .secrets import is_sealed
from .specs import LIVE_AGENT_MESSAGE_TYPES

LINES_HELP = "One per line."


def _lines(value: str) -> list[str]:
    return [line.strip() for line in (value or "").splitlines() if line.strip()]


def _json(value: str, default):
    value = (value or "").strip()
    if not value:
        return default
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise forms.ValidationError(f"Not valid JSON: {exc.msg} (line {exc.lineno}).") from exc


def _dump(value) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False) if value not in (None, "", {}, []) else ""


class ComponentForm(forms.Form):
    kind = ""
    name = forms.CharField(max_length=200)
    # The content hash the form was rendered from: the save is conditional on it, so a
    # save over someone else's newer one is refused (and shown) instead of replacing it.
    seen = forms.CharField(widget=forms.HiddenInput, required=False, max_length=64)

    def __init__(self, *args, agent=None, component=None, **kwargs):
        self.agent, self.component = agent, component
        if component is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "name": component.name,
                "seen": component.content_hash,
                **self.initial_from(component.spec),
            }
        super().__init__(*args, **kwargs)

    def initial_from(self, spec: dict) -> dict:
        return {}

    def to_spec(self) -> dict:
        raise NotImplementedError

    @property
    def uid(self) -> str:
        return str(self.component.uid) if self.component is not None else ""


class SettingsForm(ComponentForm):
    kind = "settings"
    name = None
    instructions = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 8}), required=False, help_text="The system prompt."
    )
    first_message = forms.CharField(max_length=2000, required=False)
    language = forms.CharField(max_length=16, initial="en")
    engine = forms.ChoiceField(
        choices=[("builtin", "Builtin (deterministic, no network)"), ("openai", "OpenAI-compatible")]
    )
    model = forms.CharField(max_length=100, required=False, help_text="For the OpenAI-compatible engine.")
    temperature = forms.FloatField(min_value=0, max_value=2, required=False)
    fallback = forms.CharField(
        max_length=2000, required=False, help_text="What the builtin engine says when nothing matches."
    )
    denied_topics = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        help_text="Topics the agent must not discuss, one per line (the red team checks them).",
    )

    def initial_from(self, spec):
        return {**spec, "denied_topics": "\n".join(spec.get("denied_topics", []))}

    def to_spec(self):
        data = self.cleaned_data
        spec = {k: data[k] for k in ("instructions", "first_message", "language", "engine")}
        for optional in ("model", "temperature", "fallback"):
            if data.get(optional) not in (None, ""):
                spec[optional] = data[optional]
        if _lines(data.get("denied_topics")):  # kept through a save of this form
            spec["denied_topics"] = _lines(data["denied_topics"])
        return spec


class SkillForm(ComponentForm):
    kind = "skill"
    utterances = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}), required=False, help_text=LINES_HELP
    )
    patterns = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        required=False,
        help_text="Regular expressions, one per line.",
    )
    responses = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), help_text="One per line; use {{slot}} or {{VARIABLE}}."
    )
    tool = forms.ChoiceField(required=False, help_text="A tool to call when this skill matches.")
    slots = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        help_text='JSON, e.g. {"order_id": {"type": "string", "required": true, "prompt": "Which order?"}}',
    )

    def __init__(self, *args, tools=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tool"].choices = [("", "—")] + [(t, t) for t in tools]

    def initial_from(self, spec):
        return {
            "utterances": "\n".join(spec.get("utterances", [])),
            "patterns": "\n".join(spec.get("patterns", [])),
            "responses": "\n".join(spec.get("responses", [])),
            "tool": spec.get("tool") or "",
            "slots": _dump(spec.get("slots")),
        }

    def clean_slots(self):
        return _json(self.cleaned_data["slots"], {})

    def to_spec(self):
        data = self.cleaned_data
        spec = {
            "utterances": _lines(data["utterances"]),
            "patterns": _lines(data["patterns"]),
            "responses": _lines(data["responses"]),
            "slots": data["slots"],
        }
        if data.get("tool"):
            spec["tool"] = data["tool"]
        return spec


class KnowledgeForm(ComponentForm):
    kind = "knowledge"
    title = forms.CharField(max_length=200)
    body = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 8}), strip=False, help_text="Up to 100 KB of text."
    )

    def initial_from(self, spec):
        return {"title": spec.get("title", ""), "body": spec.get("body", "")}

    def to_spec(self):
        return {"title": self.cleaned_data["title"], "body": self.cleaned_data["body"]}


class ToolForm(ComponentForm):
    kind = "tool"
    description = forms.CharField(max_length=2000)
    parameters = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
        help_text='A JSON schema, e.g. {"type": "object", "properties": {"order_id": {"type": "string"}}}',
    )
    webhook_url = forms.CharField(
        max_length=2000, required=False, help_text="Called with POST; or give a canned response."
    )
    response = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), required=False, help_text="A canned JSON response."
    )

    def initial_from(self, spec):
        return {
            "description": spec.get("description", ""),
            "parameters": _dump(spec.get("parameters")),
            "webhook_url": spec.get("webhook_url", ""),
            "response": _dump(spec.get("response")) if "response" in spec else "",
        }

    def clean_parameters(self):
        return _json(self.cleaned_data["parameters"], {"type": "object", "properties": {}})

    def clean_response(self):
        raw = self.cleaned_data["response"]
        return _json(raw, None) if raw.strip() else None

    def to_spec(self):
        data = self.cleaned_data
        spec = {"description": data["description"], "parameters": data["parameters"]}
        if data["webhook_url"]:
            spec["webhook_url"] = data["webhook_url"]
        if data["response"] is not None:
            spec["response"] = data["response"]
        return spec


class VariableForm(ComponentForm):
    kind = "variable"
    value = forms.CharField(max_length=10_000, required=False, strip=False)
    secret = forms.BooleanField(
        required=False, help_text="Encrypted, write-only: leave the value empty to keep it."
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        spec = self.component.spec if self.component is not None else {}
        if spec.get("secret"):
            self.fields["value"].widget = forms.PasswordInput(
                attrs={
                    "placeholder": "•••••• (set; type to replace)"
                    if is_sealed(spec.get("value"))
                    else "not set"
                }
            )

    def initial_from(self, spec):
        return {
            "value": "" if spec.get("secret") else spec.get("value", ""),
            "secret": bool(spec.get("secret")),
        }

    def to_spec(self):
        data = self.cleaned_data
        if data["secret"]:
            # Empty keeps the stored secret (write-only, as in the API).
            return {"secret": True, "value": data["value"] or None}
        return {"secret": False, "value": data["value"]}


class OtherForm(ComponentForm):
    """Channels, personas, notifications and live-agent messages, as JSON specs."""

    kind_choice = forms.ChoiceField(
        label="Kind",
        choices=[
            (k, k.replace("_", " "))
            for k in KIND_NAMES
            if k in ("channel", "persona", "notification", "live_agent_message")
        ],
    )
    spec = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=(
            'JSON. channel: {"type": "web", "config": {}} · persona: {"description": "…"} · '
            'notification: {"events": ["…"], "target": "…"} · live agent message: {"type": "'
            + "|".join(LIVE_AGENT_MESSAGE_TYPES)
            + '", "text": "…"}'
        ),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.component is not None:
            self.fields["kind_choice"].initial = self.component.kind
            self.fields["kind_choice"].disabled = True

    @property
    def kind(self):
        if self.component is not None:
            return self.component.kind
        return self.cleaned_data.get("kind_choice", "channel")

    def initial_from(self, spec):
        return {"spec": _dump(spec)}

    def clean_spec(self):
        return _json(self.cleaned_data["spec"], {})

    def to_spec(self):
        return self.cleaned_data["spec"]


class NewAgentForm(forms.Form):
    name = forms.CharField(max_length=120)
    description = forms.CharField(max_length=2000, required=False, widget=forms.Textarea(attrs={"rows": 2}))
    instructions = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), required=False)
    first_message = forms.CharField(max_length=2000, required=False, initial="Hi! How can I help?")
    engine = forms.ChoiceField(choices=[("builtin", "Builtin"), ("openai", "OpenAI-compatible")])


class ImportForm(forms.Form):
    document = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 12}),
        required=False,
        help_text="Paste an export, or choose a file.",
    )
    file = forms.FileField(required=False)

    def clean(self):
        data = super().clean()
        raw = data.get("document") or ""
        if data.get("file"):
            raw = data["file"].read().decode("utf-8", errors="replace")
        if not raw.strip():
            raise forms.ValidationError("Paste an export document or choose a file.")
        try:
            data["parsed"] = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc.msg} (line {exc.lineno}).") from exc
        except RecursionError as exc:  # `[[[[…` deep: a 500 otherwise
            raise forms.ValidationError(f"Not valid JSON: {TOO_DEEP_MESSAGE}") from exc
        # The same edge check as the API's parser: no NUL or lone surrogate gets further.
        problem = json_problem(data["parsed"])
        if problem is not None:
            path, message = problem
            raise forms.ValidationError(f"{path}: {message}" if path else message)
        return data


MODULE_FORMS = {
    "skills": SkillForm,
    "knowledge": KnowledgeForm,
    "tools": ToolForm,
    "variables": VariableForm,
    "other": OtherForm,
}
MODULE_KINDS = {
    "skills": ("skill",),
    "knowledge": ("knowledge",),
    "tools": ("tool",),
    "variables": ("variable",),
    "other": ("channel", "persona", "notification", "live_agent_message"),
}
