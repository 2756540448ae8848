"""Differences between two versions of an agent, by component.

Values of secrets never appear: a changed secret shows as `{"field": "value", "secret": true}`.
Each item also carries `before` and `after` (masked specs) and, for the UI, side-by-side
lines (agents.readable), so a reviewer reads the content rather than a field list.
"""

from __future__ import annotations

from .readable import masked, side_by_side
from .secrets import is_sealed, reveal
from .versioning import contents_by_hash

CATEGORIES = ("created", "updated", "deleted")


def _field_changes(old: dict, new: dict) -> list[dict]:
    """Changed spec fields; a secret is compared in the clear here and shown only as changed."""
    changes = []
    for field in sorted(set(old) | set(new)):
        before, after = old.get(field), new.get(field)
        if is_sealed(before) or is_sealed(after):
            if reveal(before) != reveal(after):
                changes.append({"field": field, "secret": True})
        elif before != after:
            changes.append({"field": field, "before": before, "after": after})
    return changes


def _content(kind: str, before, after, lines: bool) -> dict:
    out = {
        "before": masked(kind, before.spec) if before else None,
        "after": masked(kind, after.spec) if after else None,
    }
    if lines:
        out["lines"] = side_by_side(
            kind,
            (before.name, before.spec) if before else None,
            (after.name, after.spec) if after else None,
        )
    return out


def diff_entries(org_id, old_entries: list, new_entries: list, *, lines: bool = False) -> dict:
    """{"counts": {...}, "items": [{"uid","kind","name","change","fields","before","after"}]}."""
    old, new = dict(old_entries), dict(new_entries)
    changed = {uid for uid in old.keys() & new.keys() if old[uid] != new[uid]}
    contents = contents_by_hash(
        org_id,
        [old[u] for u in (old.keys() - new.keys()) | changed]
        + [new[u] for u in (new.keys() - old.keys()) | changed],
    )
    items = []
    for uid in sorted(new.keys() - old.keys()):
        content = contents[new[uid]]
        items.append(
            {
                "uid": uid,
                "kind": content.kind,
                "name": content.name,
                "change": "created",
                **_content(content.kind, None, content, lines),
            }
        )
    for uid in sorted(changed):
        before, after = contents[old[uid]], contents[new[uid]]
        fields = _field_changes(before.spec, after.spec)
        if before.name != after.name:
            fields.insert(0, {"field": "name", "before": before.name, "after": after.name})
        items.append(
            {
                "uid": uid,
                "kind": after.kind,
                "name": after.name,
                "change": "updated",
                "fields": fields,
                **_content(after.kind, before, after, lines),
            }
        )
    for uid in sorted(old.keys() - new.keys()):
        content = contents[old[uid]]
        items.append(
            {
                "uid": uid,
                "kind": content.kind,
                "name": content.name,
                "change": "deleted",
                **_content(content.kind, content, None, lines),
            }
        )
    items.sort(key=lambda item: (CATEGORIES.index(item["change"]), item["kind"], item["name"], item["uid"]))
    counts = {category: sum(1 for i in items if i["change"] == category) for category in CATEGORIES}
    return {"counts": counts, "items": items}
