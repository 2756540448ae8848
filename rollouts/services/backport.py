"""Back-port: hotfixes made in a later stage, proposed for the first stage's agent.

A manager of the later stage picks its stage-local changes (components changed since
they were last synced, or created there); an editor of the first stage reviews the
proposal and applies or declines it. Hotfixes flow back without anyone retyping them.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Stage
from agents.models import Agent, Component, VersionReason
from agents.readable import masked, side_by_side
from agents.services.components import require_change
from agents.services.versions import version_write
from agents.sync import pullable_rows
from lifecycle.access import Access, access_for
from lifecycle.audit import audit_record
from lifecycle.errors import Conflict, Forbidden, Invalid
from lifecycle.operations import Operation, OperationStatus, operation_handler, operation_start

from ..decision import approval_open, change_decide, change_recheck, decision_record
from ..events import backport_event
from ..models import Backport, BackportStatus
from .promotion import require_confirmation


def first_stage_agent(agent: Agent) -> Agent | None:
    first = Stage.objects.for_org(agent.org_id).order_by("position").first()
    if first is None or first.pk == agent.stage_id:
        return None
    return (
        Agent.objects.for_org(agent.org_id)
        .filter(lineage_id=agent.lineage_id, stage=first, archived_at__isnull=True)
        .select_related("stage")
        .first()
    )


def backport_candidates(agent: Agent, target: Agent) -> list[dict]:
    """Stage-local changes of `agent` that the first stage does not have yet."""
    rows = pullable_rows(agent.org_id, [agent.pk, target.pk])
    mine, theirs = rows[agent.pk], rows[target.pk]
    out = []
    for uid, row in sorted(mine.items(), key=lambda item: (item[1].kind, item[1].name)):
        local = not row.synced_hash or row.content_hash != row.synced_hash
        there = theirs.get(uid)
        if not local or (there is not None and there.content_hash == row.content_hash):
            continue
        out.append(
            {"uid": uid, "kind": row.kind, "name": row.name, "change": "updated" if there else "created"}
        )
    return out


def _require_manager(access: Access, agent: Agent) -> None:
    if not access.has_stage_role(agent.stage_id, "manager"):
        raise Forbidden(f"Proposing back-ports needs the manager role in {agent.stage.name}.")


def _with_lines(org_id, items: list[dict], source: Agent, target: Agent) -> list[dict]:
    """Each candidate with its side-by-side rows: the first stage's content against this stage's."""
    specs = {
        (agent_id, str(uid)): (name, spec)
        for agent_id, uid, name, spec in Component.objects.for_org(org_id)
        .filter(agent__in=[source.pk, target.pk], uid__in=[i["uid"] for i in items])
        .values_list("agent_id", "uid", "name", "spec")
    }
    return [
        {
            **item,
            "lines": side_by_side(
                item["kind"], specs.get((target.pk, item["uid"])), specs.get((source.pk, item["uid"]))
            ),
        }
        for item in items
    ]


def backport_options(*, access: Access, agent: Agent, lines: bool = False) -> dict:
    """This stage's local changes; `lines` adds their content side by side (the UI's review)."""
    target = first_stage_agent(agent)
    if target is None:
        raise Conflict(
            "Back-ports go from a later stage to the lineage's agent in the first stage; there is none."
        )
    items = backport_candidates(agent, target)
    return {
        "target_agent": str(target.pk),
        "target_stage": target.stage.slug,
        "target_stage_name": target.stage.name,
        "items": _with_lines(agent.org_id, items, agent, target) if lines else items,
    }


def backport_propose(*, access: Access, agent: Agent, include, note: str = "") -> Backport:
    _require_manager(access, agent)
    target = first_stage_agent(agent)
    if target is None:
        raise Conflict(
            "Back-ports go from a later stage to the lineage's agent in the first stage; there is none."
        )
    candidates = {item["uid"]: item for item in backport_candidates(agent, target)}
    include = [str(uid) for uid in include]
    unknown = sorted(set(include) - set(candidates))
    if not include or unknown:
        raise Invalid(
            fields={
                "include": [
                    f"Not a stage-local change: {', '.join(unknown)}."
                    if unknown
                    else "Pick at least one change."
                ]
            }
        )
    components = {
        str(c.uid): c for c in Component.objects.for_org(agent.org_id).filter(agent=agent, uid__in=include)
    }
    # `base` is what the hotfix started from: the first stage's content hash when this
    # stage last synced it ("" for a component created here). Applying later compares the
    # first stage's component against it, so a newer Development change is never replaced
    # silently (the three-way rule of pulls, run backwards).
    items = [
        {
            "uid": uid,
            "kind": components[uid].kind,
            "name": components[uid].name,
            "spec": components[uid].spec,
            "content_hash": components[uid].content_hash,
            "base": components[uid].synced_hash or "",
            "change": candidates[uid]["change"],
        }
        for uid in include
    ]
    with transaction.atomic():
        backport = Backport.objects.create(
            org=access.org,
            lineage_id=agent.lineage_id,
            source_agent=agent,
            target_agent=target,
            note=note,
            items=items,
            proposed_by=access.user,
        )
        audit_record(
            org=access.org,
            actor=access.user,
            action="backport.propose",
            target=backport,
            target_repr=f"{agent.name}: {agent.stage.slug} → {target.stage.slug}",
            changes={"items": [{"kind": i["kind"], "name": i["name"], "change": i["change"]} for i in items]},
        )
        backport_event("backport.proposed", backport, actor=access.user, note=note[:500])
    return backport


def _state(item: dict, current: Component | None) -> str:
    """unchanged | created | updated | conflict: the item against the first stage now."""
    now = current.content_hash if current is not None else ""
    if now == item["content_hash"]:
        return "unchanged"
    # Proposals made before bases were recorded have none: treat any difference as a conflict.
    if now == item.get("base"):
        return "created" if current is None else "updated"
    return "conflict"


def _targets(backport: Backport) -> dict:
    return {
        str(c.uid): c
        for c in Component.objects.for_org(backport.org_id).filter(
            agent=backport.target_agent_id, uid__in=[i["uid"] for i in backport.items]
        )
    }


def backport_preview(backport: Backport, *, lines: bool = False) -> list[dict]:
    """Each proposed item against the first stage's agent as it is now, with both contents.

    `before` is the first stage's current spec and `after` the hotfix's, both masked; a
    `conflict` is an item whose first-stage component changed since the hotfix's base.
    `lines` adds the side-by-side rows the review pages show.
    """
    current = _targets(backport)
    out = []
    for item in backport.items:
        there = current.get(item["uid"])
        row = {
            "uid": item["uid"],
            "kind": item["kind"],
            "name": item["name"],
            "change": _state(item, there),
            "before": masked(there.kind, there.spec) if there is not None else None,
            "after": masked(item["kind"], item["spec"]),
        }
        if lines:
            row["lines"] = side_by_side(
                item["kind"],
                (there.name, there.spec) if there is not None else None,
                (item["name"], item["spec"]),
            )
        out.append(row)
    return out


def _decide(access: Access, backport: Backport) -> Backport:
    if backport.status != BackportStatus.OPEN:
        raise Conflict(f"This back-port is already {backport.status}.")
    if not access.has_stage_role(backport.target_agent.stage_id, "editor"):
        raise Forbidden(f"Deciding back-ports needs the editor role in {backport.target_agent.stage.name}.")
    return backport


def backport_apply(
    *, access: Access, backport: Backport, confirm, overwrite=(), override_freeze: dict | None = None
) -> Backport | Operation:
    """Apply the proposal; conflicts stay as the first stage has them unless named in `overwrite`.

    When the first stage's policy requires approvals, nothing is applied yet: the apply
    waits as an operation (`awaiting_approval`) with its approval request, which is returned.
    """
    _decide(access, backport)
    require_confirmation(confirm)
    target = backport.target_agent
    require_change(access, target)
    # The first stage's policy decides (freeze, gate on the agent itself); no operation
    # runs later, so this one answer is the decision that is stored.
    decision = change_decide(
        access=access,
        kind="backport",
        agent=target,
        target_stage=target.stage,
        override_freeze=override_freeze,
    )
    decision.raise_for_blockers()
    if decision.approvals_required:
        return _apply_requested(
            access, backport, decision, overwrite=overwrite, override_freeze=override_freeze
        )
    with transaction.atomic():
        decision_record(access=access, decision=decision, target=target)
        return _apply(access, backport, overwrite, decision)


APPLY_KIND = "agent.backport"


def _apply_requested(
    access: Access, backport: Backport, decision, *, overwrite, override_freeze
) -> Operation:
    """The first stage's policy asks for approvals: the apply waits as an operation, with
    its request; the last approval queues it, and it checks the freeze and gate again."""
    target = backport.target_agent
    states = {item["uid"]: _state(item, _targets(backport).get(item["uid"])) for item in backport.items}
    bad = sorted(
        {str(uid) for uid in overwrite} - {uid for uid, state in states.items() if state == "conflict"}
    )
    if bad:  # said now, not after the approvals
        raise Invalid(fields={"overwrite": [f"Not a conflict in this back-port: {', '.join(bad)}."]})
    with transaction.atomic():
        operation = operation_start(
            org=access.org,
            actor=access.user,
            kind=APPLY_KIND,
            params={
                "backport": str(backport.pk),
                "overwrite": sorted(str(uid) for uid in overwrite),
                "override_freeze": override_freeze,
                "decision": decision.to_json(),
            },
            stage=target.stage,
            target=target,
            exclusive_key=f"backport:{backport.pk}",
            status=OperationStatus.AWAITING_APPROVAL,
            conflict_message="This back-port already waits to be applied.",
        )
        decision_record(access=access, decision=decision, target=target)
        note = f": {backport.note}" if backport.note else "."
        approval_open(
            access=access,
            operation=operation,
            kind="backport",
            agent=target,
            source_agent=None,  # the hotfix is stored in the proposal; the gate asks the first stage's agent
            target_stage=target.stage,
            decision=decision,
            reason=f"Back-port from {backport.source_agent.stage.name}{note}",
        )
        audit_record(
            org=access.org,
            actor=access.user,
            action="backport.apply_requested",
            target=backport,
            target_repr=target.name,
            changes={"operation": str(operation.pk), "decision": decision.to_json()},
        )
    return operation


@operation_handler(APPLY_KIND)
def backport_apply_run(operation: Operation) -> dict:
    """An approved back-port: applied as its requester, after the freeze and gate are asked again."""
    org_id, params = operation.org_id, operation.params
    backport = (
        Backport.objects.for_org(org_id)
        .select_related("target_agent__stage", "source_agent__stage")
        .get(pk=params["backport"])
    )
    target = backport.target_agent
    decision = change_recheck(
        operation=operation, kind="backport", agent=target, target_stage=target.stage, target=target
    )
    access = access_for(operation.requested_by, operation.org)
    _decide(access, backport)
    with transaction.atomic():
        applied = _apply(access, backport, params.get("overwrite") or (), decision)
    return {"backport": str(applied.pk), "version": applied.applied_version}


def _apply(access: Access, backport: Backport, overwrite, decision) -> Backport:
    """The three-way apply, inside the caller's transaction."""
    target = backport.target_agent
    locked = Backport.objects.for_org(access.org).select_for_update().get(pk=backport.pk)
    if locked.status != BackportStatus.OPEN:
        raise Conflict(f"This back-port is already {locked.status}.")
    # Lock the first stage's agent: an edit landing between the check and the write
    # would otherwise be replaced unseen.
    Agent.objects.for_org(access.org).select_for_update().get(pk=target.pk)
    existing = _targets(locked)
    states = {item["uid"]: _state(item, existing.get(item["uid"])) for item in locked.items}
    overwrite = {str(uid) for uid in overwrite}
    bad = sorted(overwrite - {uid for uid, state in states.items() if state == "conflict"})
    if bad:
        raise Invalid(fields={"overwrite": [f"Not a conflict in this back-port: {', '.join(bad)}."]})
    updates, creates, kept = [], [], []
    for item in locked.items:
        state, component = states[item["uid"]], existing.get(item["uid"])
        if state == "unchanged":
            continue
        if state == "conflict" and item["uid"] not in overwrite:
            kept.append(item["uid"])  # the first stage's newer change stays
            continue
        if component is None:
            creates.append(
                Component(
                    org=access.org,
                    agent=target,
                    uid=item["uid"],
                    kind=item["kind"],
                    name=item["name"],
                    spec=item["spec"],
                    content_hash=item["content_hash"],
                )
            )
        else:
            component.name, component.spec, component.content_hash = (
                item["name"],
                item["spec"],
                item["content_hash"],
            )
            updates.append(component)
    # A name is unique per kind in an agent: another component of the first stage may
    # have taken the hotfix's name meanwhile. Say which, rather than fail on the index.
    writing = creates + updates
    clashes = sorted(
        f"{kind} '{name}'"
        for kind, name in Component.objects.for_org(access.org)
        .filter(agent=target, kind__in={c.kind for c in writing}, name__in={c.name for c in writing})
        .exclude(uid__in=[c.uid for c in writing])
        .values_list("kind", "name")
        if (kind, name) in {(c.kind, c.name) for c in writing}
    )
    if clashes:
        raise Conflict(
            f"{target.stage.name} already has another {', '.join(clashes)}; rename one of them first."
        )
    try:
        Component.objects.bulk_create(creates)
        Component.objects.for_org(access.org).bulk_update(updates, ["name", "spec", "content_hash"])
    except IntegrityError as exc:  # a race with an edit made after the check above
        raise Conflict("The first stage's agent changed meanwhile; review the back-port again.") from exc
    version = version_write(
        actor=access.user,
        agent=target,
        changelog=f"Back-port from {backport.source_agent.stage.name}"
        + (f": {backport.note}" if backport.note else "."),
        reason=VersionReason.BACKPORT,
    )
    locked.status, locked.decided_by, locked.decided_at = (
        BackportStatus.APPLIED,
        access.user,
        timezone.now(),
    )
    locked.applied_version = version.number
    locked.save(update_fields=["status", "decided_by", "decided_at", "applied_version"])
    audit_record(
        org=access.org,
        actor=access.user,
        action="backport.apply",
        target=locked,
        target_repr=target.name,
        changes={
            "created": len(creates),
            "updated": len(updates),
            "conflicts_kept": len(kept),
            "conflicts_overwritten": len(overwrite),
            "version": version.number,
            "decision": decision.to_json(),
        },
    )
    backport_event("backport.applied", locked, actor=access.user, version=version.number)
    return locked


def backport_decline(*, access: Access, backport: Backport, note: str = "") -> Backport:
    _decide(access, backport)
    with transaction.atomic():
        locked = Backport.objects.for_org(access.org).select_for_update().get(pk=backport.pk)
        if locked.status != BackportStatus.OPEN:
            raise Conflict(f"This back-port is already {locked.status}.")
        locked.status, locked.decided_by, locked.decided_at = (
            BackportStatus.DECLINED,
            access.user,
            timezone.now(),
        )
        locked.decision_note = note
        locked.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])
        audit_record(
            org=access.org,
            actor=access.user,
            action="backport.decline",
            target=locked,
            changes={"note": note[:500]},
        )
        backport_event("backport.declined", locked, actor=access.user, note=note[:500])
    return locked
