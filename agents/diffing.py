"""Differences between two versions of an agent, by component.

Values of secrets never appear: a changed secret shows as `{"field": "value", "secret": true}`.
"""

from __future__ import annotations

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


def diff_entries(org_id, old_entries: list, new_entries: list) -> dict:
    """{"counts": {...}, "items": [{"uid","kind","name","change","fields"}]} from old to new."""
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
        items.append({"uid": uid, "kind": content.kind, "name": content.name, "change": "created"})
    for uid in sorted(changed):
        before, after = contents[old[uid]], contents[new[uid]]
        fields = _field_changes(before.spec, after.spec)
        if before.name != after.name:
            fields.insert(0, {"field": "name", "before": before.name, "after": after.name})
        items.append(
            {"uid": uid, "kind": after.kind, "name": after.name, "change": "updated", "fields": fields}
        )
    for uid in sorted(old.keys() - new.keys()):
        content = contents[old[uid]]
        items.append({"uid": uid, "kind": content.kind, "name": content.name, "change": "deleted"})
    items.sort(key=lambda item: (CATEGORIES.index(item["change"]), item["kind"], item["name"], item["uid"]))
    counts = {category: sum(1 for i in items if i["change"] == category) for category in CATEGORIES}
    return {"counts": counts, "items": items}
