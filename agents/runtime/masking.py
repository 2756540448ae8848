"""Secret variable values masked wherever the runtime lets text out.

A secret is usable (a tool's `Authorization` header), never echoed. Rendering a template
already masks `{{SECRET}}`; what it cannot see is a secret coming back from outside: a
webhook that echoes the headers it received, a model endpoint's error quoting the
request, `{{tool.*}}` over such a result. Every frame, tool result and stored turn passes
through `Masker.mask`, which replaces each secret value (and its URL-encoded form) with
the mask. Values shorter than MIN_SECRET are left alone: masking every "a" in every
answer would hide nothing worth hiding and garble the rest.
"""

from __future__ import annotations

import re
from urllib.parse import quote

SECRET_MASK = "••••••"
MIN_SECRET = 4


_REPR_ESCAPED = frozenset("'\"\\")


class Masker:
    __slots__ = ("needles", "quick")

    def __init__(self, secrets=()):
        needles = set()
        for secret in secrets:
            if secret and len(secret) >= MIN_SECRET:
                needles.add(secret)
                needles.add(quote(secret, safe=""))
        # Longest first, so a secret that contains another is masked whole.
        self.needles = tuple(sorted(needles, key=len, reverse=True))
        # repr() escapes only unprintable characters, backslashes and quotes: a needle
        # without them that is in any string of a value is in the value's repr, verbatim.
        # One repr (C speed) then rules out most frames without walking them.
        self.quick = all(n.isprintable() and not _REPR_ESCAPED & set(n) for n in self.needles)

    def __bool__(self) -> bool:
        return bool(self.needles)

    def text(self, value: str) -> str:
        for needle in self.needles:
            if needle in value:
                value = value.replace(needle, SECRET_MASK)
        return value

    def mask(self, value):
        """`value` (str, dict, list, scalars) with every secret replaced; the input is not changed."""
        if not self.needles:
            return value
        if isinstance(value, str):
            return self.text(value)
        if self.quick:
            seen = repr(value)
            if not any(needle in seen for needle in self.needles):
                return value
        return self._walk(value)

    def _walk(self, value):
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self._walk(k) if isinstance(k, str) else k: self._walk(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self._walk(v) for v in value]
        return value


NO_SECRETS = Masker()


class StreamMasker:
    """Masks a text that arrives in pieces (a model's streamed deltas), where a secret
    may be split across two of them: the last few characters, which could be the start
    of a secret, are held back until the next piece or `flush()`."""

    def __init__(self, masker: Masker):
        self.masker, self.held = masker, ""
        self.keep = max((len(n) for n in masker.needles), default=1) - 1

    def feed(self, piece: str) -> str:
        if not self.masker:
            return piece
        text = self.masker.text(self.held + piece)
        # A secret that starts before the cut and fits in `text` has just been masked;
        # one that does not fit starts after the cut, in what is held.
        cut = max(0, len(text) - self.keep)
        out, self.held = text[:cut], text[cut:]
        return out

    def flush(self) -> str:
        out, self.held = self.masker.text(self.held), ""
        return out


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# How repr() writes them (it escapes every unprintable character): a quick first look.
_UNSTORABLE_REPR = re.compile(r"\\x00|\\ud[89a-f]")


def storable(value):
    """`value` with NUL and unpaired surrogates replaced by U+FFFD: what a webhook or a
    model endpoint sends back is not ours to refuse, yet no database stores those
    characters, and one such turn would fail its whole write."""
    if isinstance(value, (dict, list, tuple)) and not _UNSTORABLE_REPR.search(repr(value)):
        return value
    return _storable(value)


def _storable(value):
    if isinstance(value, str):
        return _UNSTORABLE.sub("\ufffd", value) if _UNSTORABLE.search(value) else value
    if isinstance(value, dict):
        return {_storable(k): _storable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_storable(v) for v in value]
    return value
