"""Deterministic per-case scorers, each 0..1.

Every scorer here is a pure function of its inputs: the same answer scores the same on
every run and every machine, so a change in score means a change in the agent. They are
lexical measures (rapidfuzz's Indel similarity over normalised words), which makes them
explainable and offline, and blind to paraphrase: "we open at nine" and "opening hours
start at 9" share little text. The README's "Evaluators" section says the same for users.

Shapes (what the test-run service passes in):
- a turn result: {"user": str, "answer": str, "skill": str|None (the matched intent),
  "fallback": bool, "tool_calls": [{"tool", "arguments"}], "sources": [{"uid", …}]};
- a case's turns: [{"user": str, "expect": [{"type", …}, …]}] (API.md expectation types).
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left

from rapidfuzz import fuzz, process, utils

# Two words count as the same word at this similarity (0..100): "refund"/"refunds",
# "opening"/"open" match, "refund"/"return" do not.
WORD_MATCH = 80
# Bounds that keep a score's cost small whatever a model answers: the first MAX_WORDS
# content words of a question, the first MAX_SENTENCES sentences of an answer count.
MAX_WORDS = 200
MAX_SENTENCES = 50
# A word of at least this many letters that starts another counts as the same word.
STEM = 4
# A sentence of an answer is supported when this share of its content words is in the
# cited knowledge.
SENTENCE_SUPPORT = 0.6

_WORD = re.compile(r"\w+", re.UNICODE)
# Words that carry no topic: they would make every answer look relevant to every question.
_STOPWORDS_TEXT = """
    a an the and or but if of to in on at by for with from as is are was were be been being am do
    does did done have has had having i me my mine we us our ours you your yours he him his she her
    hers it its they them their theirs this that these those what which who whom whose when where
    why how can could would should will shall may might must not no yes so than then there here
    about into over under up down out just also very too any some all each please thanks thank hi
    hello hey
"""
STOPWORDS = frozenset(_STOPWORDS_TEXT.split())


def normalize(text: str) -> str:
    """NFKC and case folding: full-width, ligature and styled letters compare as plain ones."""
    return unicodedata.normalize("NFKC", text or "").casefold()


def content_words(text: str) -> list[str]:
    """The words of `text` that carry meaning (stop words and one-letter tokens left out)."""
    return [w for w in _WORD.findall(normalize(text)) if w not in STOPWORDS and len(w) > 1]


def similarity(a: str, b: str) -> float:
    """How alike two texts are, 0..1: rapidfuzz's token-sort ratio (normalised Indel
    distance over the sorted words, so word order does not count), after NFKC, case
    folding and punctuation removal. Two empty texts are identical (1.0)."""
    a, b = normalize(a), normalize(b)
    if not a.strip() and not b.strip():
        return 1.0
    return round(fuzz.token_sort_ratio(a, b, processor=utils.default_process) / 100.0, 4)


def _coverage(words: list[str], vocabulary: set[str]) -> float:
    """Share of `words` that have a close match in `vocabulary`: the same word, one that
    starts the other (STEM), or rapidfuzz similarity of at least WORD_MATCH."""
    if not words:
        return 1.0
    choices = sorted(vocabulary)
    found = 0
    for word in words:
        if (
            word in vocabulary
            or _same_stem(word, vocabulary, choices)
            or (choices and process.extractOne(word, choices, scorer=fuzz.ratio, score_cutoff=WORD_MATCH))
        ):
            found += 1
    return found / len(words)


def _same_stem(word: str, vocabulary: set[str], ordered: list[str]) -> bool:
    """A crude stemmer's effect without one: "open"/"opening", "refund"/"refunded".

    Looked up, not scanned: a vocabulary word that `word` starts is found by bisection in
    the sorted vocabulary, and one that starts `word` is one of its prefixes."""
    if len(word) >= STEM:
        index = bisect_left(ordered, word)
        if index < len(ordered) and ordered[index].startswith(word):
            return True
    return any(word[:size] in vocabulary for size in range(STEM, len(word)))


def relevance(question: str, answer: str) -> float:
    """How much of the question the answer talks about: the share of the question's
    content words that (nearly) appear in the answer. An empty answer scores 0; a
    question with no content words ("hi") is answered relevantly by any answer (1.0)."""
    answer_words = set(content_words(answer))
    if not answer_words:
        return 0.0
    question_words = list(dict.fromkeys(content_words(question)))[:MAX_WORDS]
    return round(_coverage(question_words, answer_words), 4)


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+|\n+", text or "") if content_words(s)]


def groundedness(answer: str, cited_knowledge_bodies: list[str]) -> float:
    """How much of the answer its cited knowledge supports: the share of the answer's
    sentences whose content words are at least SENTENCE_SUPPORT in the cited bodies.
    An answer citing nothing is grounded in nothing (0.0); so is an empty answer."""
    vocabulary = set()
    for body in cited_knowledge_bodies or ():
        vocabulary.update(content_words(body))
    sentences = _sentences(answer)[:MAX_SENTENCES]
    if not vocabulary or not sentences:
        return 0.0
    supported = sum(
        1
        for s in sentences
        if _coverage(list(dict.fromkeys(content_words(s))), vocabulary) >= SENTENCE_SUPPORT
    )
    return round(supported / len(sentences), 4)


def intent_resolution(expected_intent: str | None, matched_intent: str | None, answered: bool) -> float:
    """Whether the turn reached what the user wanted.

    With an expected intent (skill name): 1.0 when that skill matched and the turn was
    answered, 0.5 when it matched but the turn ended unanswered (a fallback or a
    failed tool), 0.0 when another skill or none matched. With no expected intent:
    1.0 when the turn was answered (not the fallback), else 0.0."""
    if expected_intent is None:
        return 1.0 if answered else 0.0
    if matched_intent != expected_intent:
        return 0.0
    return 1.0 if answered else 0.5


def _same_value(expected, actual) -> bool:
    if isinstance(expected, str) and isinstance(actual, str):
        return normalize(expected).strip() == normalize(actual).strip()
    if isinstance(expected, dict) and isinstance(actual, dict):
        return all(k in actual and _same_value(v, actual[k]) for k, v in expected.items())
    return expected == actual


def _call_score(expected: dict, actual: dict) -> float:
    """0.5 for the right tool, plus 0.5 x the share of expected arguments it got right."""
    if expected.get("tool") != actual.get("tool"):
        return 0.0
    wanted = expected.get("arguments") or {}
    got = actual.get("arguments") or {}
    if not wanted:
        return 1.0
    right = sum(1 for k, v in wanted.items() if k in got and _same_value(v, got[k]))
    return 0.5 + 0.5 * right / len(wanted)


def tool_call_accuracy(expected_calls: list[dict], actual_calls: list[dict]) -> float:
    """How well the tool calls made match the ones expected, each {"tool","arguments"}.

    Each expected call is paired greedily (in order) with the unused actual call that
    scores best: 0.5 for the same tool and 0.5 x the share of its expected arguments
    present with equal values (a subset match: extra arguments do not count against
    it; strings compare after NFKC and case folding). The sum is divided by the larger
    of the two counts, so missing calls and unexpected extra calls both lower it.
    No calls expected and none made is 1.0."""
    expected_calls, actual_calls = list(expected_calls or ()), list(actual_calls or ())
    if not expected_calls and not actual_calls:
        return 1.0
    unused = list(range(len(actual_calls)))
    total = 0.0
    for expected in expected_calls:
        best, best_index = 0.0, None
        for index in unused:
            score = _call_score(expected, actual_calls[index])
            if score > best:
                best, best_index = score, index
        if best_index is not None:
            unused.remove(best_index)
            total += best
    return round(total / max(len(expected_calls), len(actual_calls)), 4)


def _answered(turn: dict) -> bool:
    return bool((turn.get("answer") or "").strip()) and not turn.get("fallback") and not turn.get("error")


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def score_case(turn_results: list[dict], expectations: list[dict], knowledge_by_uid: dict[str, str]) -> dict:
    """A case's scores, each the mean over its turns (0..1), or None when not applicable.

    `turn_results` are the turns as run, `expectations` the case's turns ({"user",
    "expect"}) in the same order, `knowledge_by_uid` the body of each knowledge item
    by uid (str). Relevance and intent resolution apply to every turn; groundedness to
    turns that cite knowledge or expect `grounded_in` (a turn expecting it but citing
    nothing scores 0); tool-call accuracy to turns that expect a `tool_called` or made
    a call."""
    relevances, grounded, intents, tools = [], [], [], []
    for index, turn in enumerate(turn_results):
        expected = expectations[index] if index < len(expectations) else {}
        expect = [e for e in (expected.get("expect") or []) if isinstance(e, dict)]
        question = turn.get("user") or expected.get("user") or ""
        answer = turn.get("answer") or ""
        relevances.append(relevance(question, answer))

        cited = [str(s.get("uid")) for s in (turn.get("sources") or []) if isinstance(s, dict)]
        wants_grounding = any(e.get("type") == "grounded_in" for e in expect)
        if cited or wants_grounding:
            bodies = [knowledge_by_uid[uid] for uid in cited if uid in knowledge_by_uid]
            grounded.append(groundedness(answer, bodies))

        wanted_intent = next((e.get("value") for e in expect if e.get("type") == "intent"), None)
        intents.append(intent_resolution(wanted_intent, turn.get("skill"), _answered(turn)))

        wanted_calls = [
            {"tool": e.get("tool"), "arguments": e.get("arguments") or {}}
            for e in expect
            if e.get("type") == "tool_called"
        ]
        made_calls = [c for c in (turn.get("tool_calls") or []) if isinstance(c, dict)]
        if wanted_calls or made_calls:
            tools.append(tool_call_accuracy(wanted_calls, made_calls))
    return {
        "relevance": _mean(relevances),
        "groundedness": _mean(grounded),
        "intent_resolution": _mean(intents),
        "tool_call_accuracy": _mean(tools),
    }
