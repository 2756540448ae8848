"""The three-way comparison between a stage's agent and its previous stage's.

For each uid, compare the source (the lineage's active agent in the previous stage),
the target, and the target's `synced_hash` (the source's hash when last synced):

- created:  in the source only, and not deleted in the target (no tombstone);
- updated:  the source changed, the target did not;
- deleted:  the source deleted a synced component the target did not change;
- conflict: the target changed in its own stage (a hotfix) and differs from the
            source; `source_changed` says whether the source moved too. A new source
            component whose kind and name the target already uses for a component of
            its own is a conflict against that component (`target.uid` differs);
- in sync:  source and target agree (a pull only refreshes synced_hash).

Components that exist only in the target are kept and never listed. Kinds whose policy
says "never pulled" are not compared at all. Pull, back-port, drift and the
`updates_available` badge all read this module.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass

from django.db import connection

from .components import POLICY
from .models import Agent, Component, Tombstone
from .versioning import canonical_uid, db_id, uid_text

CREATED, UPDATED, DELETED, CONFLICT = "created", "updated", "deleted", "conflict"
CHANGES = (CREATED, UPDATED, DELETED, CONFLICT)


@dataclass(frozen=True)
class Row:
    uid: str
    kind: str
    name: str
    content_hash: str
    synced_hash: str


@dataclass(frozen=True)
class Change:
    uid: str
    kind: str
    name: str
    change: str
    source_changed: bool
    source: Row | None
    target: Row | None

    @property
    def selectable(self) -> bool:
        """Knowledge may be deselected one by one (and conflicts chosen by overwrite)."""
        return POLICY[self.kind].on_pull.value == "selectable" and self.change != CONFLICT


def previous_agent(agent: Agent) -> Agent | None:
    """The lineage's active agent in the stage just before this one."""
    from accounts.models import Stage

    previous = (
        Stage.objects.for_org(agent.org_id)
        .filter(position__lt=agent.stage.position)
        .order_by("-position")
        .first()
    )
    if previous is None:
        return None
    return (
        Agent.objects.for_org(agent.org_id)
        .filter(lineage_id=agent.lineage_id, stage=previous, archived_at__isnull=True)
        .select_related("stage", "lineage")
        .first()
    )


NEVER_PULLED = [k for k, kind in POLICY.items() if kind.on_pull.value == "never"]
PULLED_BY_TYPE = [k for k, kind in POLICY.items() if kind.on_pull.value == "some"]


def pullable_rows(org_id, agent_ids) -> dict:
    """{agent id: {uid: Row}} of the components a pull may carry, in one query.

    Plain SQL: this runs on every preview of agents with thousands of components, and the
    ORM's per-row UUID objects would cost more than the query itself.
    """
    agent_ids = list(agent_ids)
    out: dict = {agent_id: {} for agent_id in agent_ids}
    if not agent_ids:
        return out
    # The database hands agent ids back as text (dashed on PostgreSQL, bare hex on SQLite).
    by_text = {}
    for agent_id in agent_ids:
        parsed = uuid.UUID(str(agent_id))
        by_text[str(parsed)] = by_text[parsed.hex] = agent_id
    spec_type = "spec->>'type'" if connection.vendor == "postgresql" else "json_extract(spec, '$.type')"
    marks = ", ".join(["%s"] * len(agent_ids))
    never = ", ".join(["%s"] * len(NEVER_PULLED))
    typed = ", ".join(["%s"] * len(PULLED_BY_TYPE))
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT {uid_text("agent_id")}, {uid_text("uid")}, kind, name, content_hash, synced_hash,
                   CASE WHEN kind IN ({typed}) THEN {spec_type} END
            FROM {Component._meta.db_table}
            WHERE org_id = %s AND agent_id IN ({marks}) AND kind NOT IN ({never})
            """,  # noqa: S608 (our table; values are parameters)
            [*PULLED_BY_TYPE, db_id(org_id), *[db_id(a) for a in agent_ids], *NEVER_PULLED],
        )
        rows = cursor.fetchall()
    for agent_id, uid, kind, name, digest, synced, spec_type_value in rows:
        if kind in PULLED_BY_TYPE and not POLICY[kind].pulls({"type": spec_type_value}):
            continue
        uid = canonical_uid(uid)
        out[by_text[agent_id]][uid] = Row(uid, kind, name, digest, synced)
    return out


def tombstoned(org_id, agent_ids) -> dict:
    out: dict = {agent_id: set() for agent_id in agent_ids}
    for agent_id, uid in (
        Tombstone.objects.for_org(org_id).filter(agent_id__in=agent_ids).values_list("agent_id", "uid")
    ):
        out[agent_id].add(str(uid))
    return out


def compare(source: dict, target: dict, tombstones: set) -> tuple[list[Change], list[str]]:
    """(changes, uids only needing their synced_hash refreshed)."""
    changes: list[Change] = []
    refresh: list[str] = []
    # A name one kind may hold once per agent: a new source component whose name the
    # target already uses for a component it keeps (its own, or a hotfix) cannot simply be
    # created. It is a conflict against that component, kept unless named in `overwrite`.
    kept_names = {
        (t.kind, t.name): t
        for t in target.values()
        if t.uid not in source or not t.synced_hash or t.content_hash != t.synced_hash
    }
    for uid, s in source.items():
        t = target.get(uid)
        if t is None:
            if uid not in tombstones:
                clash = kept_names.get((s.kind, s.name))
                if clash is not None:
                    changes.append(Change(uid, s.kind, s.name, CONFLICT, True, s, clash))
                else:
                    changes.append(Change(uid, s.kind, s.name, CREATED, True, s, None))
            continue
        if t.content_hash == s.content_hash:
            if t.synced_hash != s.content_hash:
                refresh.append(uid)
            continue
        source_changed = s.content_hash != t.synced_hash
        if t.synced_hash and t.content_hash == t.synced_hash:
            changes.append(Change(uid, s.kind, s.name, UPDATED, True, s, t))
        else:
            changes.append(Change(uid, t.kind, t.name, CONFLICT, source_changed, s, t))
    for uid, t in target.items():
        if uid in source or not t.synced_hash:
            continue  # only in the target: its own, kept
        if t.content_hash == t.synced_hash:
            changes.append(Change(uid, t.kind, t.name, DELETED, True, None, t))
        else:
            changes.append(Change(uid, t.kind, t.name, CONFLICT, True, None, t))
    changes.sort(key=lambda c: (CHANGES.index(c.change), c.kind, c.name, c.uid))
    return changes, refresh


def pending(changes: list[Change]) -> bool:
    """Does the source hold changes the target has not pulled?"""
    return any(c.change != CONFLICT or c.source_changed for c in changes)


def updates_available(agent: Agent) -> bool:
    cached = getattr(agent, "updates_pending", None)
    if cached is not None:
        return cached
    annotate_updates_available([agent])
    return agent.updates_pending


def annotate_updates_available(agents: list[Agent]) -> None:
    """Set `updates_pending` on a page of agents in a constant number of queries."""
    agents = [a for a in agents if getattr(a, "updates_pending", None) is None]
    if not agents:
        return
    from accounts.models import Stage

    org_id = agents[0].org_id
    stages = list(Stage.objects.for_org(org_id).order_by("position"))
    previous_of = {later.pk: earlier.pk for earlier, later in itertools.pairwise(stages)}
    candidates = [a for a in agents if a.stage_id in previous_of and not a.archived]
    for agent in agents:
        agent.updates_pending = False
    if not candidates:
        return
    sources = {
        (s.lineage_id, s.stage_id): s
        for s in Agent.objects.for_org(org_id).filter(
            lineage_id__in={a.lineage_id for a in candidates},
            stage_id__in={previous_of[a.stage_id] for a in candidates},
            archived_at__isnull=True,
        )
    }
    pairs = [(a, sources.get((a.lineage_id, previous_of[a.stage_id]))) for a in candidates]
    pairs = [(a, s) for a, s in pairs if s is not None]
    ids = [a.pk for a, _ in pairs] + [s.pk for _, s in pairs]
    rows = pullable_rows(org_id, ids)
    stones = tombstoned(org_id, [a.pk for a, _ in pairs])
    for agent, source in pairs:
        changes, _ = compare(rows[source.pk], rows[agent.pk], stones[agent.pk])
        agent.updates_pending = pending(changes)
