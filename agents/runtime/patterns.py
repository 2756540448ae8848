"""User-supplied regular expressions (skill `patterns`, slot `pattern`), run in linear time.

Python's `re` backtracks: `^(a+)+$` against 27 characters held the GIL for 6 s and
stalled every org's requests on the process. RE2 (the `google-re2` binding) matches in
time linear in the text, at the price of a smaller syntax: no backreferences (`\\1`), no
lookarounds (`(?=…)`, `(?<!…)`), no possessive or atomic groups. Validation refuses what
RE2 cannot compile; a stored pattern from before that rule is skipped, with a warning,
rather than breaking the whole agent.
"""

from __future__ import annotations

import functools
import logging

import re2

logger = logging.getLogger(__name__)


class PatternError(ValueError):
    pass


def _options() -> re2.Options:
    options = re2.Options()
    options.case_sensitive = False  # patterns match as `re.IGNORECASE` did
    options.log_errors = False  # a refused pattern is our ValueError, not a line on stderr
    return options


_OPTIONS = _options()


class Pattern:
    """A compiled pattern with the few `re.Pattern` methods the engine uses."""

    __slots__ = ("_regexp", "source")

    def __init__(self, source: str):
        try:
            self._regexp = re2.compile(source, _OPTIONS)
        except re2.error as exc:
            reason = exc.args[0].decode(errors="replace") if exc.args else "unsupported syntax"
            raise PatternError(reason) from exc
        except (TypeError, UnicodeError) as exc:
            raise PatternError("not a text pattern") from exc
        self.source = source

    def search(self, text: str):
        # RE2 reads UTF-8: a lone surrogate (refused at the edges, but never trusted here)
        # would raise inside the engine, so it becomes U+FFFD instead.
        try:
            return self._regexp.search(text)
        except UnicodeEncodeError:
            return self._regexp.search(text.encode("utf-8", "replace").decode("utf-8"))

    def __repr__(self) -> str:
        return f"Pattern({self.source!r})"


def check(source: str) -> str | None:
    """Why RE2 refuses `source`, or None if it compiles."""
    try:
        Pattern(source)
    except PatternError as exc:
        return str(exc)
    return None


@functools.lru_cache(maxsize=2048)
def compiled(source: str) -> Pattern | None:
    """The pattern compiled once per process; None (and a warning) if RE2 refuses it."""
    try:
        return Pattern(source)
    except PatternError as exc:
        logger.warning("skipping a stored pattern RE2 cannot run (%s): %.100r", exc, source)
        return None
