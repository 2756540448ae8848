"""Server-side copies of components between agents of one org.

Promotion, pull and back-port move many rows; each statement here moves any number of
them in one round trip (INSERT … SELECT, UPDATE … FROM), so the number of queries never
depends on the number of components. Both PostgreSQL and SQLite (≥ 3.33) run them.
"""

from __future__ import annotations

from django.db import connection
from django.utils import timezone

from .models import Agent, Component

TABLE = Component._meta.db_table


def _db(value, field_name: str):
    """A Python value as the database column wants it (UUIDs are text on SQLite)."""
    field = Component._meta.get_field(field_name)
    return field.get_db_prep_value(value, connection, prepared=False)


def _now():
    return connection.ops.adapt_datetimefield_value(timezone.now())


def _orgs(target: Agent) -> list:
    """The target's org, for both sides of an UPDATE … FROM."""
    org = _db(target.org_id, "org")
    return [org, org]


def _in(values: list, field: str) -> tuple[str, list]:
    if not values:
        return "1 = 0", []
    return f"{field} IN ({', '.join(['%s'] * len(values))})", [_db(v, "uid") for v in values]


def copy_components(source: Agent, target: Agent, *, kinds=None, uids=None, review_kinds=()) -> int:
    """Insert the source's components into the target: same uids, synced to the source."""
    # Every statement names the target's org for both sides: an agent id alone would let
    # a mismatched pair copy another org's rows in (or write rows under another org).
    where = ["s.agent_id = %s"]
    params: list = [_db(target.org_id, "org"), _db(source.pk, "agent")]
    if kinds is not None:
        where.append(f"s.kind IN ({', '.join(['%s'] * len(kinds))})" if kinds else "1 = 0")
        params += list(kinds)
    if uids is not None:
        clause, values = _in(list(uids), "s.uid")
        where.append(clause)
        params += values
    review = f"s.kind IN ({', '.join(['%s'] * len(review_kinds))})" if review_kinds else "1 = 0"
    now = _now()
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {TABLE}
                (org_id, agent_id, uid, kind, name, spec, content_hash, synced_hash, needs_review,
                 created_at, updated_at)
            SELECT s.org_id, %s, s.uid, s.kind, s.name, s.spec, s.content_hash, s.content_hash,
                   CASE WHEN {review} THEN %s ELSE %s END, %s, %s
            FROM {TABLE} s
            WHERE s.org_id = %s AND {" AND ".join(where)}
            """,  # noqa: S608 (table and column names are ours; values are parameters)
            [_db(target.pk, "agent"), *review_kinds, True, False, now, now, *params],
        )
        return cursor.rowcount


def overwrite_components(source: Agent, target: Agent, uids) -> int:
    """Give the target's rows the source's content for these uids, synced to the source."""
    uids = list(uids)
    if not uids:
        return 0
    clause, values = _in(uids, "t.uid")
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {TABLE} AS t
            SET name = s.name, spec = s.spec, content_hash = s.content_hash,
                synced_hash = s.content_hash, needs_review = %s, updated_at = %s
            FROM {TABLE} AS s
            WHERE t.org_id = %s AND s.org_id = %s
              AND t.agent_id = %s AND s.agent_id = %s AND s.uid = t.uid AND {clause}
            """,  # noqa: S608
            [False, _now(), *_orgs(target), _db(target.pk, "agent"), _db(source.pk, "agent"), *values],
        )
        return cursor.rowcount


def mark_synced(source: Agent, target: Agent, uids) -> int:
    """Set the target's synced_hash to the source's current hash (content untouched)."""
    uids = list(uids)
    if not uids:
        return 0
    clause, values = _in(uids, "t.uid")
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {TABLE} AS t
            SET synced_hash = s.content_hash
            FROM {TABLE} AS s
            WHERE t.org_id = %s AND s.org_id = %s
              AND t.agent_id = %s AND s.agent_id = %s AND s.uid = t.uid AND {clause}
            """,  # noqa: S608
            [*_orgs(target), _db(target.pk, "agent"), _db(source.pk, "agent"), *values],
        )
        return cursor.rowcount
