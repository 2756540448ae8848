"""The pipeline board: every lineage as a row, every stage the member can see as a column.

A constant number of queries whatever the number of lineages: stages, agents, active
releases, open alerts, and the two drift reads (components, tombstones), each once.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from django.db.models import Count

from accounts.models import Stage
from agents.models import Agent
from agents.sync import CONFLICT, compare, pending, pullable_rows, tombstoned
from lifecycle.access import Access
from rollouts.models import ACTIVE_RELEASE_STATUSES, Release

from .models import Alert


@dataclass
class Cell:
    agent: Agent
    release: Release | None = None
    updates: bool = False
    conflicts: int = 0
    alerts: int = 0


@dataclass
class Row:
    lineage: object
    name: str
    cells: list = field(default_factory=list)  # one Cell or None per visible stage


@dataclass
class Board:
    stages: list
    rows: list


def pipeline_board(access: Access) -> Board:
    org = access.org
    visible_ids = access.stage_ids_with("viewer")
    all_stages = list(Stage.objects.for_org(org).order_by("position"))
    stages = [s for s in all_stages if visible_ids is None or s.pk in visible_ids]
    if not stages:
        return Board(stages=[], rows=[])
    # Every active agent of the org: a visible cell's drift reads its previous stage's
    # agent even when that stage is hidden (the agent API shows updates_available too).
    agents = list(
        Agent.objects.for_org(org)
        .filter(archived_at__isnull=True)
        .select_related("lineage", "stage")
        .order_by("lineage__slug")
    )
    by_place = {(a.lineage_id, a.stage_id): a for a in agents}
    shown_stage_ids = {s.pk for s in stages}
    shown = [a for a in agents if a.stage_id in shown_stage_ids]
    shown_ids = [a.pk for a in shown]

    releases = {
        r.agent_id: r
        for r in Release.objects.for_org(org).filter(
            agent_id__in=shown_ids, status__in=[s.value for s in ACTIVE_RELEASE_STATUSES]
        )
    }
    alert_counts = dict(
        Alert.objects.for_org(org)
        .filter(resolved_at__isnull=True, agent_id__in=shown_ids)
        .values_list("agent_id")
        .annotate(n=Count("id"))
        .values_list("agent_id", "n")
    )
    stage_alerts = dict(
        Alert.objects.for_org(org)
        .filter(resolved_at__isnull=True, agent__isnull=True, stage_id__in=shown_stage_ids)
        .values_list("stage_id")
        .annotate(n=Count("id"))
        .values_list("stage_id", "n")
    )

    previous_of = {later.pk: earlier.pk for earlier, later in itertools.pairwise(all_stages)}
    pairs = []
    for agent in shown:
        source = by_place.get((agent.lineage_id, previous_of.get(agent.stage_id)))
        if source is not None:
            pairs.append((agent, source))
    ids = {a.pk for a, _ in pairs} | {s.pk for _, s in pairs}
    rows = pullable_rows(org.pk, ids) if pairs else {}
    stones = tombstoned(org.pk, [a.pk for a, _ in pairs]) if pairs else {}
    drift = {}
    for agent, source in pairs:
        changes, _ = compare(rows[source.pk], rows[agent.pk], stones[agent.pk])
        drift[agent.pk] = (pending(changes), sum(1 for c in changes if c.change == CONFLICT))

    board_rows: dict = {}
    for agent in shown:
        row = board_rows.get(agent.lineage_id)
        if row is None:
            row = board_rows[agent.lineage_id] = Row(lineage=agent.lineage, name=agent.name)
            row.by_stage = {}
        updates, conflicts = drift.get(agent.pk, (False, 0))
        row.by_stage[agent.stage_id] = Cell(
            agent=agent,
            release=releases.get(agent.pk),
            updates=updates,
            conflicts=conflicts,
            alerts=alert_counts.get(agent.pk, 0),
        )
    for row in board_rows.values():
        row.cells = [row.by_stage.get(s.pk) for s in stages]
        # The row is named after its most advanced agent: what the lineage is known as.
        row.name = next(c.agent.name for c in reversed(row.cells) if c is not None)
    ordered = sorted(board_rows.values(), key=lambda r: (r.name.lower(), r.lineage.slug))
    for stage in stages:
        # Stage-wide open alerts (spend), shown in the column's header.
        stage.open_alerts = stage_alerts.get(stage.pk, 0)
    return Board(stages=stages, rows=ordered)
