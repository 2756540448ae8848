"""The evidence packet: everything a reviewer decides on, in one read.

The diff that will be applied (with content, secrets masked), the gate's checks as they
stand now, the latest test runs, the red-team table and the latest soak of the agent the
gate is evaluated on, and who asked and why.
"""

from __future__ import annotations

from accounts.models import Stage
from agents.components import PROMOTED_KINDS
from agents.diffing import diff_entries
from agents.models import Agent, AgentVersion, Component
from agents.readable import masked, side_by_side
from lifecycle.access import Access
from rollouts.decision import change_decide
from rollouts.models import EvaluationStatus, TestRun
from rollouts.redteam.gate import latest_redteam_run
from rollouts.services.pull import pull_preview_between
from rollouts.soak_gate import latest_soak

from .models import ApprovalRequest
from .services.approval import source_fingerprint

MAX_ITEMS = 200  # a reviewer reads a diff; a 10k-component agent's first copy is summarized
MAX_RUNS = 10


def gate_agent(request: ApprovalRequest) -> Agent:
    """What the gate is evaluated on: the source for promote and pull, else the agent."""
    return request.source_agent or request.agent


def _promote_diff(request: ApprovalRequest, lines: bool) -> dict:
    """A promotion makes a new clone: every promoted component arrives, as it is now."""
    source = request.source_agent
    rows = list(
        Component.objects.for_org(request.org_id)
        .filter(agent=source, kind__in=sorted(PROMOTED_KINDS))
        .order_by("kind", "name")
        .values_list("uid", "kind", "name", "spec")
    )
    items = []
    for uid, kind, name, spec in rows[:MAX_ITEMS]:
        item = {"uid": str(uid), "kind": kind, "name": name, "change": "created", "before": None}
        item["after"] = masked(kind, spec)
        if lines:
            item["lines"] = side_by_side(kind, None, (name, spec))
        items.append(item)
    return {
        "counts": {"created": len(rows), "updated": 0, "deleted": 0, "conflict": 0},
        "items": items,
        "truncated": len(rows) > MAX_ITEMS,
        "source_version": source.version,
        "source_unsaved_changes": source.has_unsaved_changes,
    }


def _pull_diff(request: ApprovalRequest, lines: bool) -> dict:
    """The pull's preview, with what the requester excluded or kept marked as not applied."""
    params = request.operation.params
    exclude, overwrite = set(params.get("exclude") or []), set(params.get("overwrite") or [])
    preview = pull_preview_between(request.source_agent, request.agent, lines=lines)
    items = preview["items"]
    for item in items:
        if item["uid"] in exclude:
            item["applies"], item["note"] = False, "excluded by the requester"
        elif item["change"] == "conflict" and item["uid"] not in overwrite:
            item["applies"], item["note"] = False, "conflict kept (this stage's own change stays)"
        else:
            item["applies"] = True
    return {
        "counts": preview["counts"],
        "items": items[:MAX_ITEMS],
        "truncated": len(items) > MAX_ITEMS,
        "source_version": preview["source_version"],
        "source_unsaved_changes": request.source_agent.has_unsaved_changes,
    }


def _release_diff(request: ApprovalRequest, lines: bool) -> dict:
    """What live users get: the live version against the candidate."""
    agent = request.agent
    wanted = request.operation.params.get("version")
    versions = {
        v.number: v
        for v in AgentVersion.objects.for_org(request.org_id)
        .filter(agent=agent, number__in=[n for n in (agent.live_version, wanted) if n])
        .select_related("manifest")
    }
    live, candidate = versions.get(agent.live_version), versions.get(wanted)
    diff = diff_entries(
        request.org_id,
        live.manifest.entries if live else [],
        candidate.manifest.entries if candidate else [],
        lines=lines,
    )
    items = diff["items"]
    return {
        "counts": {**diff["counts"], "conflict": 0},
        "items": items[:MAX_ITEMS],
        "truncated": len(items) > MAX_ITEMS,
        "live_version": agent.live_version,
        "candidate_version": wanted,
    }


def _backport_diff(request: ApprovalRequest, lines: bool) -> dict:
    """The hotfixes against the first stage's agent as it is now, conflicts marked."""
    from rollouts.models import Backport
    from rollouts.services.backport import backport_preview

    backport = Backport.objects.for_org(request.org_id).get(pk=request.operation.params["backport"])
    items = backport_preview(backport, lines=lines)
    overwrite = set(request.operation.params.get("overwrite") or [])
    for item in items:  # what the apply will do with each conflict, as it was asked
        if item["change"] == "conflict":
            keep = item["uid"] not in overwrite
            item["resolution"] = "keep" if keep else "overwrite"
            item["applies"] = not keep
            if keep:
                item["note"] = "the first stage changed it since; its version is kept"
    counts: dict[str, int] = {}
    for item in items:
        counts[item["change"]] = counts.get(item["change"], 0) + 1
    return {"counts": counts, "items": items[:MAX_ITEMS], "truncated": len(items) > MAX_ITEMS}


DIFFS = {"promote": _promote_diff, "pull": _pull_diff, "release": _release_diff, "backport": _backport_diff}


def _test_runs(agent: Agent) -> list[dict]:
    runs = (
        TestRun.objects.for_org(agent.org_id)
        .filter(agent=agent, status=EvaluationStatus.SUCCEEDED)
        .select_related("suite")
        .order_by("-finished_at")[:50]
    )
    latest, seen = [], set()
    for run in runs:
        if run.suite_id in seen:
            continue
        seen.add(run.suite_id)
        latest.append(
            {
                "id": str(run.pk),
                "suite": {"id": str(run.suite_id), "name": run.suite.name},
                "version": run.version,
                "latest_version": run.version == agent.version,
                "accuracy": run.accuracy,
                "passed": run.passed,
                "failed": run.failed,
                "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            }
        )
        if len(latest) >= MAX_RUNS:
            break
    return latest


def _red_team(agent: Agent) -> dict | None:
    run = latest_redteam_run(agent)
    if run is None:
        return None
    return {
        "id": str(run.pk),
        "version": run.version,
        "attacks": run.attacks,
        "successes": run.successes,
        "attack_success_rate": run.attack_success_rate,
        "table": run.table,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }


def _soak(agent: Agent) -> dict | None:
    soak = latest_soak(agent)
    if soak is None:
        return None
    return {
        "id": str(soak.pk),
        "version": soak.version,
        "executions": soak.executions,
        "errors": soak.errors,
        "error_rate": soak.error_rate,
        "latency_ms": soak.latency_ms,
        "throughput_per_s": soak.throughput_per_s,
        "finished_at": soak.finished_at.isoformat() if soak.finished_at else None,
    }


def approval_evidence(request: ApprovalRequest, *, access: Access, lines: bool = False) -> dict:
    """The packet for one request; `lines` adds the side-by-side rows the page shows."""
    subject = gate_agent(request)
    stage = Stage.objects.for_org(request.org_id).get(pk=request.target_stage_id)
    # The same question the operation asks again when it runs (no override: a preview).
    decision = change_decide(access=access, kind=request.kind, agent=subject, target_stage=stage)
    changed = bool(
        request.is_open
        and request.source_agent_id
        and request.fingerprint
        and source_fingerprint(request.source_agent) != request.fingerprint
    )
    return {
        "requested": {
            "by": {"id": str(request.requested_by_id), "email": request.requested_by.email},
            "at": request.created_at.isoformat(),
            "reason": request.reason,
            "params": {
                k: request.operation.params.get(k)
                for k in ("changelog", "exclude", "overwrite", "version", "strategy")
                if k in request.operation.params
            },
        },
        "diff": DIFFS[request.kind](request, lines),
        "gate": {
            "agent": str(subject.pk),
            "mode": decision.gate_mode,
            "passed": decision.gate_passed,
            "checks": [dict(check) for check in decision.checks],
            "freeze": decision.freeze,
        },
        "test_runs": _test_runs(subject),
        "red_team": _red_team(subject),
        "soak": _soak(subject),
        "source_changed": changed,
    }
