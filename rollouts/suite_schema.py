"""Validation of test cases: their turns and each expectation, with dotted field paths.

A case is `{"turns": [{"user": "…", "expect": [{"type": …}, …]}, …]}`. Every error names
the exact place (`turns.0.expect.1.threshold`) so an editor, the API and an import can
point at it. Unknown types and extra keys are refused: a typo (`treshold`) silently
ignored would make an expectation weaker than its author believes.
"""

from __future__ import annotations

from agents.runtime.patterns import check as pattern_check

MAX_TURNS = 50
MAX_USER = 4000
MAX_EXPECT = 20
MAX_VALUE = 4000

# type -> (required keys, optional keys with defaults)
EXPECTATION_TYPES: dict[str, tuple[tuple[str, ...], dict]] = {
    "contains": (("value",), {}),
    "equals": (("value",), {}),
    "regex": (("value",), {}),
    "must_not_contain": (("value",), {}),
    "similar_to": (("value",), {"threshold": 0.8}),
    "intent": (("value",), {}),
    "tool_called": (("tool",), {"arguments": {}}),
    "grounded_in": (("knowledge",), {}),
    "max_latency_ms": (("value",), {}),
}


def _text(value, path: str, errors: dict, *, limit: int = MAX_VALUE) -> None:
    if not isinstance(value, str) or not value.strip():
        errors[path] = ["Give a non-empty text."]
    elif len(value) > limit:
        errors[path] = [f"At most {limit} characters."]


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _expectation(item, path: str, errors: dict) -> dict | None:
    if not isinstance(item, dict):
        errors[path] = ["Each expectation is an object with a type."]
        return None
    kind = item.get("type")
    if kind not in EXPECTATION_TYPES:
        errors[f"{path}.type"] = [f"Choose one of: {', '.join(EXPECTATION_TYPES)}."]
        return None
    required, optional = EXPECTATION_TYPES[kind]
    for key in item:
        if key != "type" and key not in required and key not in optional:
            errors[f"{path}.{key}"] = ["Unknown field."]
    for key in required:
        if key not in item:
            errors[f"{path}.{key}"] = ["This field is required."]
    clean = {"type": kind, **optional, **{k: v for k, v in item.items() if k in required or k in optional}}
    value = clean.get("value")
    if kind in ("contains", "equals", "must_not_contain", "similar_to", "intent") and "value" in item:
        _text(value, f"{path}.value", errors)
    elif kind == "regex" and "value" in item:
        _text(value, f"{path}.value", errors)
        if f"{path}.value" not in errors:
            reason = pattern_check(value)
            if reason:
                errors[f"{path}.value"] = [f"Not a pattern the linear-time engine (RE2) runs: {reason}."]
    elif kind == "max_latency_ms" and "value" in item and (not _number(value) or value <= 0):
        errors[f"{path}.value"] = ["Give a number of milliseconds above 0."]
    if kind == "similar_to":
        threshold = clean["threshold"]
        if not _number(threshold) or not 0 <= threshold <= 1:
            errors[f"{path}.threshold"] = ["Give a number from 0 to 1."]
    if kind == "tool_called":
        if "tool" in item:
            _text(item["tool"], f"{path}.tool", errors, limit=200)
        if not isinstance(clean["arguments"], dict):
            errors[f"{path}.arguments"] = ["Give an object: the arguments the call must include."]
    if kind == "grounded_in" and "knowledge" in item:
        _text(item["knowledge"], f"{path}.knowledge", errors, limit=200)
    return clean


def validate_turns(turns, *, prefix: str = "turns") -> tuple[list[dict], dict[str, list[str]]]:
    """(the normalised turns, {dotted path: [messages]}); no errors means valid."""
    errors: dict[str, list[str]] = {}
    if not isinstance(turns, list) or not turns:
        return [], {prefix: ["Give 1 to 50 turns."]}
    if len(turns) > MAX_TURNS:
        return [], {prefix: [f"At most {MAX_TURNS} turns."]}
    clean_turns = []
    for i, turn in enumerate(turns):
        path = f"{prefix}.{i}"
        if not isinstance(turn, dict):
            errors[path] = ['Each turn is {"user": "…", "expect": […]}.']
            continue
        for key in turn:
            if key not in ("user", "expect"):
                errors[f"{path}.{key}"] = ["Unknown field."]
        if "user" not in turn:
            errors[f"{path}.user"] = ["This field is required."]
        else:
            _text(turn["user"], f"{path}.user", errors, limit=MAX_USER)
        expect = turn.get("expect", [])
        clean_expect = []
        if not isinstance(expect, list):
            errors[f"{path}.expect"] = ["Give a list of expectations."]
        elif len(expect) > MAX_EXPECT:
            errors[f"{path}.expect"] = [f"At most {MAX_EXPECT} expectations per turn."]
        else:
            for j, item in enumerate(expect):
                clean = _expectation(item, f"{path}.expect.{j}", errors)
                if clean is not None:
                    clean_expect.append(clean)
        clean_turns.append({"user": turn.get("user"), "expect": clean_expect})
    return clean_turns, errors
