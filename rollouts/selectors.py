"""Reads for rollouts: drift across a lineage's stages, back-port proposals."""

from __future__ import annotations

import itertools

from django.db.models import Q

from accounts.models import Stage
from agents.models import Agent, Component, Lineage
from agents.readable import side_by_side
from agents.sync import compare, pullable_rows, tombstoned
from lifecycle.access import Access
from lifecycle.errors import NotFound

from .models import Backport, Release, StageKey, TestSuite


def _drift_lines(org_id, pairs: list[dict]) -> None:
    """Add each drift item's side-by-side content (earlier stage left, later right), one query."""
    wanted = {(p["from_agent"], i["uid"]) for p in pairs for i in p["items"]}
    wanted |= {(p["to_agent"], i["uid"]) for p in pairs for i in p["items"]}
    if not wanted:
        return
    specs = {
        (str(agent_id), str(uid)): (name, spec)
        for agent_id, uid, name, spec in Component.objects.for_org(org_id)
        .filter(
            agent__in={agent for agent, _ in wanted},
            uid__in={uid for _, uid in wanted},
        )
        .values_list("agent_id", "uid", "name", "spec")
    }
    for pair in pairs:
        for item in pair["items"]:
            item["lines"] = side_by_side(
                item["kind"],
                specs.get((pair["from_agent"], item["uid"])),
                specs.get((pair["to_agent"], item["uid"])),
            )


def lineage_drift(*, access: Access, lineage_slug: str, lines: bool = False) -> dict:
    """For each pair of adjacent stages: what differs, and which differences are hotfixes.

    `lines` adds each item's content side by side (the drift page).
    """
    lineage = Lineage.objects.for_org(access.org).filter(slug=lineage_slug).first()
    if lineage is None:
        raise NotFound()
    stages = list(Stage.objects.for_org(access.org).order_by("position"))
    agents = {
        a.stage_id: a
        for a in access.visible(Agent.objects.for_org(access.org)).filter(
            lineage=lineage, archived_at__isnull=True
        )
    }
    if not agents:
        raise NotFound()
    present = [(stage, agents.get(stage.pk)) for stage in stages]
    ids = [a.pk for a in agents.values()]
    rows = pullable_rows(access.org.pk, ids)
    stones = tombstoned(access.org.pk, ids)
    pairs = []
    for (earlier, source), (later, target) in itertools.pairwise(present):
        if source is None or target is None:
            continue
        changes, _ = compare(rows[source.pk], rows[target.pk], stones[target.pk])
        items = [
            {
                "uid": c.uid,
                "kind": c.kind,
                "name": c.name,
                "change": c.change,
                "hotfix": c.change == "conflict",
            }
            for c in changes
        ]
        local = [
            {"uid": uid, "kind": row.kind, "name": row.name, "change": "local", "hotfix": True}
            for uid, row in sorted(rows[target.pk].items(), key=lambda item: (item[1].kind, item[1].name))
            if uid not in rows[source.pk] and not row.synced_hash
        ]
        pairs.append(
            {
                "from": earlier.slug,
                "to": later.slug,
                "from_agent": str(source.pk),
                "to_agent": str(target.pk),
                "differences": len(items) + len(local),
                "items": items + local,
            }
        )
    if lines:
        _drift_lines(access.org.pk, pairs)
    return {
        "lineage": lineage.slug,
        "stages": [
            {
                "stage": stage.slug,
                "name": stage.name,
                "agent": str(agent.pk) if agent else None,
                "version": agent.version if agent else None,
            }
            for stage, agent in present
        ],
        "pairs": pairs,
    }


def backports_visible(access: Access, queryset=None):
    """Proposals about agents the caller can see, from either end."""
    backports = queryset if queryset is not None else Backport.objects.for_org(access.org)
    backports = backports.select_related(
        "source_agent__stage", "target_agent__stage", "proposed_by", "decided_by"
    )
    stage_ids = access.stage_ids_with("viewer")
    if stage_ids is not None:
        backports = backports.filter(
            Q(target_agent__stage_id__in=stage_ids)
            | Q(source_agent__stage_id__in=stage_ids)
            | Q(proposed_by=access.user)
        )
    return backports.order_by("-created_at")


def stage_keys_of(stage):
    return StageKey.objects.for_org(stage.org_id).filter(stage=stage).select_related("created_by", "stage")


def releases_of(agent: Agent):
    """The agent's releases, newest first (visibility is the agent's: check it first)."""
    return (
        Release.objects.for_org(agent.org_id)
        .filter(agent=agent)
        .select_related("created_by")
        .order_by("-created_at")
    )


def lineages_visible(access: Access):
    """Lineage ids with an agent the caller can see (a stage role or a grant)."""
    agents = access.visible(Agent.objects.for_org(access.org).filter(archived_at__isnull=True))
    return agents.values("lineage_id")


def suites_visible(access: Access, queryset=None):
    """Live (not archived) suites of lineages the caller can see an agent of."""
    suites = queryset if queryset is not None else TestSuite.objects.for_org(access.org)
    suites = suites.filter(archived_at__isnull=True).select_related("lineage", "created_by")
    if access.stage_ids_with("viewer") is not None:
        suites = suites.filter(lineage_id__in=lineages_visible(access))
    return suites.order_by("name", "id")


def safety_by_version(agent: Agent, *, limit: int = 20) -> list[dict]:
    """Per version (newest first), the safety defect rates seen so far: the live sample's
    and the latest finished test run's. Gates and release analysis read these."""
    from .models import EvaluationStatus, LiveSafety, TestRun

    live = {row.version: row for row in LiveSafety.objects.for_org(agent.org_id).filter(agent=agent)}
    runs: dict[int, TestRun] = {}
    for run in (
        TestRun.objects.for_org(agent.org_id)
        .filter(agent=agent, version__isnull=False, status=EvaluationStatus.SUCCEEDED)
        .exclude(safety={})
        .order_by("-finished_at")
        .only("id", "version", "safety", "finished_at")
    ):
        runs.setdefault(run.version, run)
    versions = sorted(set(live) | set(runs), reverse=True)[:limit]
    return [
        {
            "version": version,
            "live": (
                {"scored": live[version].scored, "rates": live[version].rates()} if version in live else None
            ),
            "test_run": (
                {
                    "run": str(runs[version].pk),
                    "rates": runs[version].safety,
                    "finished_at": runs[version].finished_at,
                }
                if version in runs
                else None
            ),
        }
        for version in versions
    ]


def safety_worst_rate(entry: dict | None) -> float | None:
    """The highest defect rate of any category in one version's evidence, or None (no data).

    A live sample with nothing scored yet is no evidence."""
    if entry is None:
        return None
    rates = []
    if entry["live"] and entry["live"]["scored"]:
        rates += entry["live"]["rates"].values()
    if entry["test_run"]:
        rates += [r for r in entry["test_run"]["rates"].values() if isinstance(r, (int, float))]
    return max(rates) if rates else None
