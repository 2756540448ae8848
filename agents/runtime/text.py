"""Small, deterministic text tools for the builtin engine: tokens, similarity, BM25,
sentences and `{{variable}}` templates."""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field

WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
SENTENCE = re.compile(r"(?<=[.!?])\s+")
TEMPLATE = re.compile(r"{{\s*([A-Za-z_][A-Za-z0-9_.]*)\s*}}")
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "am",
        "i",
        "me",
        "my",
        "we",
        "our",
        "you",
        "your",
        "it",
        "its",
        "of",
        "to",
        "in",
        "on",
        "at",
        "for",
        "and",
        "or",
        "but",
        "do",
        "does",
        "did",
        "can",
        "could",
        "would",
        "should",
        "will",
        "shall",
        "this",
        "that",
        "these",
        "those",
        "there",
        "here",
        "what",
        "which",
        "who",
        "how",
        "please",
        "pls",
        "with",
        "about",
        "from",
        "by",
        "as",
        "if",
        "so",
        "than",
        "then",
        "just",
        "want",
        "like",
    ]
)


def stem(word: str) -> str:
    """A crude, stable stemmer: enough to match 'orders' with 'order', 'returns' with 'return'."""
    for suffix in ("ing", "ies", "es", "ed", "s"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word


def tokens(text: str) -> list[str]:
    return [stem(w) for w in WORD.findall((text or "").lower()) if w not in STOPWORDS]


def similarity(a: set[str], b: set[str]) -> float:
    """Dice coefficient of two token sets, 0..1."""
    if not a or not b:
        return 0.0
    return 2 * len(a & b) / (len(a) + len(b))


@dataclass
class Document:
    key: str
    title: str
    text: str
    terms: Counter = field(default_factory=Counter)
    length: int = 0


class BM25:
    """Okapi BM25 over a fixed set of documents (the agent's knowledge)."""

    def __init__(self, documents: list[Document], k1: float = 1.4, b: float = 0.75):
        self.documents, self.k1, self.b = documents, k1, b
        for doc in documents:
            words = tokens(f"{doc.title} {doc.title} {doc.text}")  # the title counts double
            doc.terms, doc.length = Counter(words), len(words)
        self.avg_length = sum(d.length for d in documents) / len(documents) if documents else 0.0
        frequency: Counter = Counter()
        for doc in documents:
            frequency.update(doc.terms.keys())
        n = len(documents)
        self.idf = {term: math.log(1 + (n - df + 0.5) / (df + 0.5)) for term, df in frequency.items()}

    def search(self, query: str) -> list[tuple[float, Document]]:
        terms = tokens(query)
        results = []
        for doc in self.documents:
            score = 0.0
            for term in terms:
                tf = doc.terms.get(term, 0)
                if tf:
                    norm = tf + self.k1 * (1 - self.b + self.b * doc.length / (self.avg_length or 1))
                    score += self.idf[term] * tf * (self.k1 + 1) / norm
            if score > 0:
                results.append((score, doc))
        results.sort(key=lambda pair: (-pair[0], pair[1].key))
        return results

    def coverage(self, query: str, doc: Document) -> float:
        """How much of the query the document covers, 0..1 (a confidence, unlike BM25's score)."""
        terms = set(tokens(query))
        return len(terms & set(doc.terms)) / len(terms) if terms else 0.0


def best_passage(query: str, text: str, sentences: int = 2) -> str:
    """The sentence that overlaps the query most, with the one after it."""
    parts = [p.strip() for p in SENTENCE.split(text.strip()) if p.strip()]
    if not parts:
        return text.strip()
    wanted = set(tokens(query))
    scored = [(len(wanted & set(tokens(p))), -i) for i, p in enumerate(parts)]
    best = -max(scored)[1]
    return " ".join(parts[best : best + sentences])


def render(template: str, lookup) -> str:
    """Fill `{{name}}` (and `{{tool.field}}`) from `lookup(name)`; unknown names become ''."""

    def replace(match: re.Match) -> str:
        value = lookup(match.group(1))
        return "" if value is None else str(value)

    return TEMPLATE.sub(replace, template or "")


def words(text: str) -> list[str]:
    """The text as stream deltas: each word with the space before it."""
    pieces = re.findall(r"\s*\S+", text)
    return pieces or ([text] if text else [])


def estimate_tokens(text: str) -> int:
    return max(1, round(len((text or "").split()) * 1.3)) if text else 0
