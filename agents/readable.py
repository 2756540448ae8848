"""Component content as a reviewer reads it: `key: value` lines, side by side, secrets masked.

Pull previews, back-port proposals, drift and the version diff all show what changes,
not only which component. A spec becomes plain lines (lists one item per line, never a
Python repr), the two sides are aligned with difflib, and a secret variable's value is
never rendered: it reads "••• (changed)" or "••• (unchanged)" on both sides.
"""

from __future__ import annotations

import difflib
import json

from .secrets import is_sealed, mask, reveal

SECRET_CHANGED = "••• (changed)"
SECRET_UNCHANGED = "••• (unchanged)"
SECRET_SET = "•••"


def _scalar(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        # One line per value: a newline inside a text shows as a visible marker.
        return value.replace("\r\n", "\n").replace("\n", " ⏎ ")
    return json.dumps(value, ensure_ascii=False)


def _lines(value, indent: str, key: str | None, secrets: dict) -> list[str]:
    label = f"{indent}{key}:" if key is not None else f"{indent}-"
    if is_sealed(value):
        return [f"{label} {secrets.get(key, SECRET_SET)}"]
    if isinstance(value, dict):
        if not value:
            return [f"{label} (none)"]
        out = [label]
        for k in sorted(value):
            out += _lines(value[k], indent + "  ", str(k), {})
        return out
    if isinstance(value, list):
        if not value:
            return [f"{label} (none)"]
        out = [label]
        for item in value:
            out += _lines(item, indent + "  ", None, {})
        return out
    return [f"{label} {_scalar(value)}"]


def spec_lines(name: str, spec: dict, *, secrets: dict | None = None) -> list[str]:
    """The component as lines; `secrets` maps a sealed field to the text shown in its place."""
    lines = [f"name: {name}"]
    for key in sorted(spec or {}):
        lines += _lines(spec[key], "", key, secrets or {})
    return lines


def value_lines(value) -> list[str]:
    """Any JSON value as readable lines (tool arguments and results in transcripts)."""
    if isinstance(value, dict):
        out = []
        for key in sorted(value):
            out += _lines(value[key], "", str(key), {})
        return out or ["(none)"]
    if isinstance(value, list):
        return [line for item in value for line in _lines(item, "", None, {})] or ["(none)"]
    return [_scalar(value)]


def _secret_notes(before: dict | None, after: dict | None) -> dict:
    """For each sealed field of either side: changed or unchanged (compared in the clear)."""
    notes = {}
    for key in set(before or {}) | set(after or {}):
        old, new = (before or {}).get(key), (after or {}).get(key)
        if is_sealed(old) or is_sealed(new):
            notes[key] = SECRET_CHANGED if reveal(old) != reveal(new) else SECRET_UNCHANGED
    return notes


def masked(kind: str, spec: dict | None) -> dict | None:
    """The spec a client may see (a secret's value is null)."""
    return None if spec is None else mask(kind, spec)


def side_by_side(kind: str, before: tuple | None, after: tuple | None) -> list[dict]:
    """Aligned rows [{"op", "before", "after"}] from (name, stored spec) pairs; None is absent.

    `op` is equal, changed, removed or added; a missing side of a row is None.
    """
    notes = _secret_notes(before[1] if before else None, after[1] if after else None)
    old = spec_lines(*before, secrets=notes) if before else []
    new = spec_lines(*after, secrets=notes) if after else []
    rows: list[dict] = []
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            rows += [{"op": "equal", "before": line, "after": line} for line in old[i1:i2]]
            continue
        left, right = old[i1:i2], new[j1:j2]
        for index in range(max(len(left), len(right))):
            a = left[index] if index < len(left) else None
            b = right[index] if index < len(right) else None
            op = "changed" if a is not None and b is not None else ("removed" if b is None else "added")
            rows.append({"op": op, "before": a, "after": b})
    return rows


def changed_fields(before: dict | None, after: dict | None, names: tuple = (None, None)) -> list[str]:
    """Top-level fields (and `name`) that differ; secrets compared in the clear, named only."""
    fields = ["name"] if names[0] is not None and names[1] is not None and names[0] != names[1] else []
    before, after = before or {}, after or {}
    for key in sorted(set(before) | set(after)):
        if reveal(before.get(key)) != reveal(after.get(key)):
            fields.append(key)
    return fields
