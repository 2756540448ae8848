"""Content-addressed version storage.

A version is a manifest of (uid, content hash) pairs; contents live once per org in
ComponentContent, keyed by hash. Writing a version copies only contents the org has
never stored, server-side, in one statement; identical manifests are shared. So a save
point of a 10k-component agent with three edits writes three content rows, and a
promotion's clone (same contents, same org) writes none.
"""

from __future__ import annotations

import hashlib
import json
import uuid

from django.db import connection

from .models import Agent, Component, ComponentContent, Manifest


def store_contents(agent: Agent) -> None:
    """Copy the agent's not-yet-stored contents into the org's content store."""
    content = ComponentContent._meta.db_table
    component = Component._meta.db_table
    insert = "INSERT INTO" if connection.vendor == "postgresql" else "INSERT OR IGNORE INTO"
    conflict = "ON CONFLICT (org_id, hash) DO NOTHING" if connection.vendor == "postgresql" else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            {insert} {content} (org_id, hash, kind, name, spec, created_at)
            SELECT c.org_id, c.content_hash, c.kind, c.name, c.spec, CURRENT_TIMESTAMP
            FROM {component} c
            WHERE c.org_id = %s AND c.agent_id = %s
              AND NOT EXISTS (
                SELECT 1 FROM {content} s WHERE s.org_id = c.org_id AND s.hash = c.content_hash
              )
            {conflict}
            """,  # noqa: S608 (table names come from the models, values are parameters)
            [db_id(agent.org_id), db_id(agent.pk)],
        )


def uid_text(column: str) -> str:
    """SQL for a uuid column as canonical text (the ORM's UUID objects cost more than the query)."""
    return f"{column}::text" if connection.vendor == "postgresql" else column


def canonical_uid(value: str) -> str:
    return value if len(value) == 36 else str(uuid.UUID(value))  # SQLite stores 32 hex digits


def db_id(value):
    """A uuid key as the database column wants it (32 hex digits on SQLite)."""
    return uuid.UUID(str(value)).hex if connection.vendor == "sqlite" else value


def current_entries(agent: Agent) -> list[list[str]]:
    """[[uid, content_hash], ...] of the working copy, sorted by uid."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {uid_text('uid')}, content_hash FROM {Component._meta.db_table} "  # noqa: S608
            "WHERE org_id = %s AND agent_id = %s",
            [db_id(agent.org_id), db_id(agent.pk)],
        )
        rows = [[canonical_uid(uid), digest] for uid, digest in cursor.fetchall()]
    rows.sort()
    return rows


def manifest_for(agent: Agent, entries: list[list[str]]) -> Manifest:
    digest = hashlib.sha256(json.dumps(entries, separators=(",", ":")).encode()).hexdigest()
    # Only the id: a large manifest's entries are megabytes nobody needs here.
    existing = (
        Manifest.objects.for_org(agent.org_id).filter(digest=digest).only("id", "digest", "size").first()
    )
    if existing is not None:
        return existing
    Manifest.objects.bulk_create(
        [Manifest(org_id=agent.org_id, digest=digest, entries=entries, size=len(entries))],
        ignore_conflicts=True,
    )
    return Manifest.objects.for_org(agent.org_id).only("id", "digest", "size").get(digest=digest)


def snapshot(agent: Agent) -> Manifest:
    """Store the agent's working copy and return its manifest."""
    store_contents(agent)
    return manifest_for(agent, current_entries(agent))


def contents_by_hash(org_id, hashes) -> dict[str, ComponentContent]:
    return {c.hash: c for c in ComponentContent.objects.for_org(org_id).filter(hash__in=set(hashes))}
