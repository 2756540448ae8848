"""Judging one answered turn against a case's expectations (the types of API.md).

`evaluate(expectation, result)` -> (passed, reason). `result` is what the run saw of one
turn: the answer `text`, the matched skill (`intent`), the `tools` called with their
arguments, the knowledge `sources` (uids) the answer cites, and `latency_ms`. A failed
expectation's reason says what was expected and what came back, so a reader sees why
without replaying the conversation: {"turn","type","expected","got"}.
"""

from __future__ import annotations

from agents.runtime.patterns import Pattern, PatternError

GOT_LIMIT = 500  # a reason quotes at most this much of the answer


def similarity(a: str, b: str) -> float:
    """0..1 lexical similarity: J3's evaluator when it exists, else rapidfuzz directly."""
    try:
        from rollouts.evaluators import similarity as shared
    except ImportError:  # the evaluators package is not there (yet)
        from rapidfuzz import fuzz

        return fuzz.token_set_ratio(a, b) / 100
    return shared(a, b)


def _subset(expected, got) -> bool:
    """`expected` is contained in `got`: every key of a dict, recursively; else equal."""
    if isinstance(expected, dict):
        return isinstance(got, dict) and all(k in got and _subset(v, got[k]) for k, v in expected.items())
    return expected == got


def _clip(text: str) -> str:
    return text if len(text) <= GOT_LIMIT else text[:GOT_LIMIT] + "…"


def evaluate(expectation: dict, result: dict) -> tuple[bool, object, object]:
    """(passed, expected, got) for one expectation against one turn's result."""
    kind = expectation["type"]
    text = result.get("text") or ""
    if kind == "contains":
        value = expectation["value"]
        return value.casefold() in text.casefold(), value, _clip(text)
    if kind == "must_not_contain":
        value = expectation["value"]
        return value.casefold() not in text.casefold(), f"not {value!r}", _clip(text)
    if kind == "equals":
        value = expectation["value"]
        return text.strip() == value.strip(), value, _clip(text)
    if kind == "regex":
        try:
            matched = Pattern(expectation["value"]).search(text) is not None
        except PatternError:  # validation refuses these; a stored one never passes
            matched = False
        return matched, expectation["value"], _clip(text)
    if kind == "similar_to":
        threshold = float(expectation.get("threshold", 0.8))
        score = round(similarity(expectation["value"], text), 3)
        return (
            score >= threshold,
            f"similarity >= {threshold} to {expectation['value']!r}",
            {
                "similarity": score,
                "text": _clip(text),
            },
        )
    if kind == "intent":
        got = result.get("intent")
        return got == expectation["value"], expectation["value"], got
    if kind == "tool_called":
        wanted, arguments = expectation["tool"], expectation.get("arguments") or {}
        calls = result.get("tools") or []
        passed = any(c.get("tool") == wanted and _subset(arguments, c.get("arguments") or {}) for c in calls)
        return passed, {"tool": wanted, "arguments": arguments}, calls
    if kind == "grounded_in":
        sources = result.get("sources") or []
        return expectation["knowledge"] in sources, expectation["knowledge"], sources
    if kind == "max_latency_ms":
        latency = result.get("latency_ms")
        return latency is not None and latency <= expectation["value"], expectation["value"], latency
    return False, kind, "unknown expectation type"


def failures(turn: int, expectations: list[dict], result: dict) -> list[dict]:
    """The reasons of every expectation of one turn that failed (empty: all passed)."""
    reasons = []
    for expectation in expectations:
        passed, expected, got = evaluate(expectation, result)
        if not passed:
            reasons.append({"turn": turn, "type": expectation["type"], "expected": expected, "got": got})
    return reasons
