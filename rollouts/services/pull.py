"""Pull updates into an agent from the same lineage's agent in the previous stage.

The preview is the three-way comparison of `agents.sync`. Applying it never overwrites a
hotfix unless the user names it in `overwrite`, never touches what the policy keeps per
stage (variables, channels …), and runs as an operation that writes a version.
"""

from __future__ import annotations

import csv
import io
from collections import Counter

from django.db import transaction

from agents.copying import copy_components, mark_synced, overwrite_components
from agents.models import Agent, AgentVersion, Component, VersionReason
from agents.readable import changed_fields, masked, side_by_side
from agents.services.components import delete_components
from agents.services.versions import version_write
from agents.sync import (
    CHANGES,
    CONFLICT,
    CREATED,
    DELETED,
    UPDATED,
    compare,
    previous_agent,
    pullable_rows,
    tombstoned,
)
from lifecycle.access import Access
from lifecycle.audit import audit_record
from lifecycle.csvsafe import csv_row
from lifecycle.errors import Conflict, Forbidden, Invalid, NotFound
from lifecycle.operations import (
    Operation,
    OperationStatus,
    operation_failure_hook,
    operation_finish,
    operation_handler,
    operation_progress,
    operation_start,
)

from ..decision import approval_open, change_decide, change_recheck, decision_record
from ..events import agent_event, operation_failed_event
from .promotion import require_confirmation, require_no_editors

KIND = "agent.pull"
CSV_COLUMNS = ["uid", "kind", "name", "change", "source_changed", "selectable", "fields_changed"]


def pull_source(access: Access, agent: Agent) -> Agent:
    source = previous_agent(agent)
    if source is None:
        raise Conflict("There is no agent of this lineage in the previous stage to pull from.")
    if not access.can("view", source):
        raise NotFound()
    return source


def pull_changes(source: Agent, target: Agent):
    rows = pullable_rows(target.org_id, [source.pk, target.pk])
    stones = tombstoned(target.org_id, [target.pk])
    return compare(rows[source.pk], rows[target.pk], stones[target.pk])


def _contents(org_id, source: Agent, target: Agent, uids: list[str]) -> dict:
    """{(agent id, uid): (name, stored spec)} for the listed components of both agents."""
    return {
        (agent_id, str(uid)): (name, spec)
        for agent_id, uid, name, spec in Component.objects.for_org(org_id)
        .filter(agent__in=[source.pk, target.pk], uid__in=uids)
        .values_list("agent_id", "uid", "name", "spec")
    }


def pull_preview(*, access: Access, agent: Agent, lines: bool = False) -> dict:
    """What a pull would do, per component, with counts by category and by kind.

    Each item carries `before` (this agent's spec) and `after` (the source's), masked, and
    the fields that differ; `lines` adds the side-by-side rows the UI shows.
    """
    return pull_preview_between(pull_source(access, agent), agent, lines=lines)


def pull_preview_between(source: Agent, agent: Agent, *, lines: bool = False) -> dict:
    """The preview of a pull from `source` into `agent`, for a caller that already holds the
    source (an approval request's evidence shows it to reviewers of the target stage)."""
    changes, refresh = pull_changes(source, agent)
    by_kind: dict[str, dict[str, int]] = {}
    for change in changes:
        by_kind.setdefault(change.kind, dict.fromkeys(CHANGES, 0))[change.change] += 1
    counts = Counter(change.change for change in changes)
    contents = _contents(
        agent.org_id, source, agent, [c.uid for c in changes] + [c.target.uid for c in changes if c.target]
    )
    items = []
    for c in changes:
        mine = c.target.uid if c.target else c.uid  # a name clash's target is another component
        before, after = contents.get((agent.pk, mine)), contents.get((source.pk, c.uid))
        item = {
            "uid": c.uid,
            "kind": c.kind,
            "name": c.name,
            "change": c.change,
            "source_changed": c.source_changed,
            "selectable": c.selectable,
            "fields_changed": changed_fields(
                before[1] if before else None,
                after[1] if after else None,
                (before[0] if before else None, after[0] if after else None),
            ),
            "before": masked(c.kind, before[1]) if before else None,
            "after": masked(c.kind, after[1]) if after else None,
        }
        if mine != c.uid:
            item["replaces"] = mine  # this agent's own component of the same name
        if lines:
            item["lines"] = side_by_side(c.kind, before, after)
        items.append(item)
    return {
        "source_agent": str(source.pk),
        "source_stage": source.stage.slug,
        "source_stage_name": source.stage.name,
        "source_version": source.version,
        "counts": {category: counts.get(category, 0) for category in CHANGES},
        "by_kind": by_kind,
        "in_sync_refresh": len(refresh),
        "items": items,
    }


def pull_preview_csv(preview: dict) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for item in preview["items"]:
        row = {**item, "fields_changed": " ".join(item["fields_changed"])}
        writer.writerow(csv_row(row[column] for column in CSV_COLUMNS))  # formulas neutralized
    return buffer.getvalue()


def pull_request(
    *,
    access: Access,
    agent: Agent,
    confirm,
    exclude=(),
    overwrite=(),
    changelog: str = "",
    acknowledge_editors: bool = False,
    override_freeze: dict | None = None,
) -> Operation:
    """Check a pull and start it as an operation."""
    if not access.has_stage_role(agent.stage_id, "manager"):
        raise Forbidden(f"Pulling into {agent.stage.name} needs the manager role there.")
    if agent.archived:
        raise Conflict("An archived agent cannot pull updates.")
    source = pull_source(access, agent)
    require_confirmation(confirm)
    changes, _ = pull_changes(source, agent)
    selectable = {c.uid for c in changes if c.selectable}
    conflicts = {c.uid for c in changes if c.change == CONFLICT}
    errors = {}
    bad_exclude = sorted(set(map(str, exclude)) - selectable)
    if bad_exclude:
        errors["exclude"] = [f"Not a selectable knowledge change in this pull: {', '.join(bad_exclude)}."]
    bad_overwrite = sorted(set(map(str, overwrite)) - conflicts)
    if bad_overwrite:
        errors["overwrite"] = [f"Not a conflict in this pull: {', '.join(bad_overwrite)}."]
    if errors:
        raise Invalid(fields=errors)
    # The gate is the source's: what is pulled must have earned its way, as in a promotion.
    decision = change_decide(
        access=access, kind="pull", agent=source, target_stage=agent.stage, override_freeze=override_freeze
    )
    decision.raise_for_blockers()
    require_no_editors(access, agent, acknowledge_editors)
    with transaction.atomic():
        operation = operation_start(
            org=access.org,
            actor=access.user,
            kind=KIND,
            params={
                "agent": str(agent.pk),
                "source_agent": str(source.pk),
                "exclude": sorted(map(str, exclude)),
                "overwrite": sorted(map(str, overwrite)),
                "changelog": changelog,
                "override_freeze": override_freeze,
                "decision": decision.to_json(),
            },
            stage=agent.stage,
            target=agent,
            exclusive_key=f"pull:{agent.pk}",
            status=(
                OperationStatus.AWAITING_APPROVAL if decision.approvals_required else OperationStatus.QUEUED
            ),
            conflict_message="A pull into this agent is already under way.",
        )
        decision_record(access=access, decision=decision, target=agent)
        if operation.status == OperationStatus.AWAITING_APPROVAL:
            approval_open(
                access=access,
                operation=operation,
                kind="pull",
                agent=agent,
                source_agent=source,
                target_stage=agent.stage,
                decision=decision,
                reason=changelog,
            )
        audit_record(
            org=access.org,
            actor=access.user,
            action="agent.pull.request",
            target=agent,
            changes={
                "from": source.stage.slug,
                "operation": str(operation.pk),
                "status": operation.status,
                "decision": decision.to_json(),
            },
        )
    return operation


@operation_handler(KIND)
def pull_run(operation: Operation) -> dict:
    org_id = operation.org_id
    params = operation.params
    target = Agent.objects.for_org(org_id).select_related("stage").get(pk=params["agent"])
    source = Agent.objects.for_org(org_id).select_related("stage").get(pk=params["source_agent"])
    exclude, overwrite = set(params.get("exclude", [])), set(params.get("overwrite", []))
    # Asked again now: a window may have opened, or the gate changed, since the request.
    decision = change_recheck(
        operation=operation, kind="pull", agent=source, target_stage=target.stage, target=target
    )
    operation_progress(operation, 5)
    with transaction.atomic():
        # Lock the target: two pulls, or a pull and an edit, never interleave.
        Agent.objects.for_org(org_id).select_for_update().get(pk=target.pk)
        changes, refresh = pull_changes(source, target)
        by_change: dict[str, list] = {category: [] for category in CHANGES}
        kept = []  # conflicts not named in `overwrite`: the hotfix stays
        for change in changes:
            if change.uid in exclude:
                continue
            if change.change == CONFLICT and change.uid not in overwrite:
                kept.append(change)
            else:
                by_change[change.change].append(change)
        # A name clash named in `overwrite`: the target's own component of that name gives
        # way to the source's, removed first so the name is free.
        replaced = [c for c in by_change[CONFLICT] if c.source and c.target and c.target.uid != c.uid]
        if replaced:
            delete_components(
                target,
                Component.objects.for_org(org_id).filter(
                    agent=target, uid__in=[c.target.uid for c in replaced]
                ),
            )
        clashes = {c.uid for c in replaced}
        created = [c.uid for c in by_change[CREATED]] + sorted(clashes)
        updated = [c.uid for c in by_change[UPDATED]] + [
            c.uid for c in by_change[CONFLICT] if c.source and c.uid not in clashes
        ]
        deleted = [c.uid for c in by_change[DELETED]] + [c.uid for c in by_change[CONFLICT] if not c.source]
        copy_components(source, target, uids=created)
        operation_progress(operation, 40)
        overwrite_components(source, target, updated)
        if deleted:
            delete_components(target, Component.objects.for_org(org_id).filter(agent=target, uid__in=deleted))
        # A kept hotfix now stands against this source version: it is no longer "new".
        mark_synced(source, target, [c.uid for c in kept if c.source] + refresh)
        Component.objects.for_org(org_id).filter(
            agent=target, uid__in=[c.uid for c in kept if not c.source]
        ).update(synced_hash="")
        operation_progress(operation, 75)
        source_version = (
            AgentVersion.objects.for_org(org_id).filter(agent=source, number=source.version).first()
        )
        summary = {
            "created": len(created),
            "updated": len(by_change[UPDATED]),
            "deleted": len(by_change[DELETED]),
            "conflicts_overwritten": len(by_change[CONFLICT]),
            "conflicts_kept": len(kept),
            "excluded": len(exclude),
        }
        version = version_write(
            actor=operation.requested_by,
            agent=target,
            changelog=params.get("changelog") or f"Pulled updates from {source.stage.name}.",
            reason=VersionReason.PULL,
            source_version=source_version,
        )
        audit_record(
            org=target.org,
            actor=operation.requested_by,
            action="agent.pull",
            target=target,
            changes={
                "from": source.stage.slug,
                "source_version": source.version,
                **summary,
                "version": version.number,
                "decision": decision.to_json(),
            },
        )
        result = {
            **summary,
            "version": version.number,
            "agent": str(target.pk),
            "url": f"/orgs/{target.org.slug}/agents/{target.pk}/",
        }
        agent_event(
            "pull.succeeded",
            target,
            operation=operation,
            actor=operation.requested_by,
            source_agent=str(source.pk),
            from_stage=source.stage.slug,
            to_stage=target.stage.slug,
            version=version.number,
            **summary,
        )
        operation_finish(operation, result=result)
    return result


@operation_failure_hook(KIND)
def pull_failed(operation: Operation, error: dict) -> None:
    target = Agent.objects.for_org(operation.org_id).select_related("stage").get(pk=operation.params["agent"])
    source = (
        Agent.objects.for_org(operation.org_id)
        .select_related("stage")
        .get(pk=operation.params["source_agent"])
    )
    operation_failed_event(
        "pull.failed", target, operation, error, from_stage=source.stage.slug, to_stage=target.stage.slug
    )
