"""One decision for every change into a stage (DESIGN.md §8).

Promote, pull, back-port apply, restore and release ask `change_decide` of the target
stage's policy before they start, and again when their operation runs: is a freeze
window open (423 unless an org owner/admin overrides it with a reason), how does every
gate check fare (409 `gate_failed`, listing all of them), and how many approvals the
change needs (202 `awaiting_approval`). The decision is stored with the operation and
in the audit entry, so the log shows why a change was let through.

Which kind asks what (API.md): the gate is evaluated on the source agent for promote
and pull, and on the agent itself for release, restore and back-port; approvals apply
to promote, pull and release, the kinds that run as operations.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.models import Stage
from agents.models import Agent, Conversation
from lifecycle.access import Access
from lifecycle.audit import audit_record
from lifecycle.errors import Forbidden, Frozen, GateFailed, Invalid

from .policy import WEEKDAYS, effective_document, window_times
from .redteam.gate import attack_success_check
from .soak_gate import soak_checks

KINDS = ("promote", "pull", "backport", "restore", "release")
APPROVAL_KINDS = ("promote", "pull", "backport", "release")
NO_DATA = "no data"


@dataclass(frozen=True)
class Decision:
    kind: str
    stage: str  # the target stage's slug
    agent: str  # the agent the gate was evaluated on
    decided_at: str
    # {"window": {"id", "reason", "ends_at"}, "overridden": bool, "override": {"by", "reason"} | None}
    freeze: dict | None = None
    checks: tuple = ()
    gate_mode: str = "any"
    gate_passed: bool = True
    approvals_required: int = 0
    stage_name: str = ""  # for messages: people know stages by their names
    # For the gate.failed event (webhooks): whose agent, under which name.
    org: object = field(default=None, compare=False, repr=False)
    agent_name: str = ""

    @property
    def frozen(self) -> bool:
        return self.freeze is not None and not self.freeze["overridden"]

    @property
    def overridden(self) -> bool:
        return self.freeze is not None and self.freeze["overridden"]

    def raise_for_blockers(self) -> None:
        """Frozen (423) first, then GateFailed (409) with every check, as API.md orders them."""
        if self.frozen:
            window = self.freeze["window"]
            reason = f" ({window['reason']})" if window.get("reason") else ""
            raise Frozen(
                f"{self.stage_name or self.stage} is frozen until {window['ends_at']}{reason}.",
                details={"window": window},
            )
        if not self.gate_passed:
            failing = ", ".join(check["name"] for check in self.checks if not check["passed"])
            self._emit_gate_failed()
            raise GateFailed(
                f"The gate of {self.stage_name or self.stage} failed: {failing}.",
                details={"checks": [*self.checks]},
            )

    def _emit_gate_failed(self) -> None:
        """Tell webhooks a change was refused by the gate: a request refused here, or an
        operation whose recheck failed. Outside the change's transaction (there is no
        change), so the event is kept although the refusal raises."""
        if self.org is None:
            return
        from webhooks.events import event_emit

        event_emit(
            org=self.org,
            event="gate.failed",
            data={
                "kind": self.kind,
                "agent": self.agent,
                "agent_name": self.agent_name,
                "stage": self.stage,
                "target_stage": self.stage,
                "gate_mode": self.gate_mode,
                "failed_checks": [dict(c) for c in self.checks if not c["passed"]],
            },
        )

    def to_json(self) -> dict:
        return {
            "kind": self.kind,
            "stage": self.stage,
            "agent": self.agent,
            "decided_at": self.decided_at,
            "freeze": self.freeze,
            "checks": [dict(check) for check in self.checks],
            "gate_mode": self.gate_mode,
            "gate_passed": self.gate_passed,
            "approvals_required": self.approvals_required,
        }


# --- freeze windows ---------------------------------------------------------------------
def _weekly_occurrences(window: dict, now: datetime):
    """(start, end) of the weekly window's occurrences that could contain `now`, aware.

    Each occurrence is built in the window's own zone from local dates and times, so a
    window from Friday 12:00 to Monday 08:00 keeps its wall-clock edges across a DST
    change (the occurrence is then an hour longer or shorter in absolute time).
    """
    local_today = now.astimezone(ZoneInfo(window["timezone"])).date()
    # A window lasts at most a week: the starts of the last eight days cover `now`.
    yield from _weekly_starts(window, local_today - timedelta(days=7), local_today)


def _weekly_starts(window: dict, first: date, last: date):
    """(start, end) of the weekly window's occurrences starting on local dates first..last."""
    zone = ZoneInfo(window["timezone"])
    start_time, end_time = window_times(window)
    day = first
    while day <= last:
        name = WEEKDAYS[day.weekday()]
        if name in window["days"]:
            end_day = window.get("end_day")
            if end_day is None:
                offset = 0 if end_time > start_time else 1
            else:
                offset = (WEEKDAYS.index(end_day) - WEEKDAYS.index(name)) % 7
                if offset == 0 and end_time <= start_time:
                    offset = 7
            yield (
                datetime.combine(day, start_time, tzinfo=zone),
                datetime.combine(day + timedelta(days=offset), end_time, tzinfo=zone),
            )
        day += timedelta(days=1)


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def upcoming_window(
    windows: list[dict], now: datetime | None = None, within: timedelta = timedelta(days=7)
) -> dict | None:
    """The next freeze window to open after `now` and within `within`, as
    {"id", "reason", "starts_at", "ends_at"}, or None (what the UI warns of ahead)."""
    now = now or timezone.now()
    horizon = now + within
    found = None
    for window in windows:
        if window["kind"] == "once":
            spans = [(parse_datetime(window["starts_at"]), parse_datetime(window["ends_at"]))]
        else:
            local = now.astimezone(ZoneInfo(window["timezone"])).date()
            spans = _weekly_starts(window, local, local + within + timedelta(days=1))
        for start, end in spans:
            if now < start <= horizon and (found is None or start < found[1]):
                found = (window, start, end)
    if found is None:
        return None
    window, start, end = found
    return {
        "id": window["id"],
        "reason": window.get("reason") or "",
        "starts_at": _utc(start),
        "ends_at": _utc(end),
    }


def open_window(windows: list[dict], now: datetime | None = None) -> dict | None:
    """The freeze window open at `now` as {"id", "reason", "ends_at"}, or None.

    When several are open, the one ending last is reported: that is when changes resume.
    """
    now = now or timezone.now()
    found = None
    for window in windows:
        if window["kind"] == "once":
            starts, ends = parse_datetime(window["starts_at"]), parse_datetime(window["ends_at"])
            spans = [(starts, ends)]
        else:
            spans = _weekly_occurrences(window, now)
        for start, end in spans:
            if start <= now < end and (found is None or end > found[1]):
                found = (window, end)
    if found is None:
        return None
    window, end = found
    return {
        "id": window["id"],
        "reason": window.get("reason") or "",
        "ends_at": end.astimezone(UTC).isoformat().replace("+00:00", "Z"),
    }


# --- gate checks ------------------------------------------------------------------------
def _check(name: str, actual, required, passed: bool) -> dict:
    return {"name": name, "actual": actual, "required": required, "passed": bool(passed)}


def gate_checks(gate: dict, agent: Agent, now: datetime | None = None) -> tuple[list[dict], bool]:
    """Every configured check of the gate on `agent`, and whether the gate passes.

    min_executions and min_days combine by `mode` ("any": either suffices); every other
    configured check must pass. Checks whose data later work provides (accuracy, red
    team, soak, error rate) report "no data" and fail: missing data is never a pass.
    """
    now = now or timezone.now()
    checks, volume = [], []
    if gate.get("min_executions") is not None:
        executions = (
            Conversation.objects.for_org(agent.org_id)
            .filter(agent=agent, stage_id=agent.stage_id, source__in=gate["count_sources"])
            .count()
        )
        volume.append(
            _check("min_executions", executions, gate["min_executions"], executions >= gate["min_executions"])
        )
    if gate.get("min_days") is not None:
        days = round((now - agent.created_at).total_seconds() / 86400, 2)
        volume.append(_check("min_days", days, gate["min_days"], days >= gate["min_days"]))
    checks += volume
    if gate.get("required_suites") or gate.get("min_accuracy") is not None:
        checks += _accuracy_checks(gate, agent)
    if gate.get("max_attack_success_rate") is not None:
        checks.append(attack_success_check(gate["max_attack_success_rate"], agent))
    if gate.get("require_soak") or gate.get("max_error_rate") is not None:
        checks += soak_checks(gate, agent)
    if gate.get("max_safety_defect_rate") is not None:
        checks.append(_safety_check(gate["max_safety_defect_rate"], agent))
    if volume:
        combine = any if gate.get("mode", "any") == "any" else all
        volume_passed = combine(check["passed"] for check in volume)
    else:
        volume_passed = True
    others = [check for check in checks if check not in volume]
    return checks, volume_passed and all(check["passed"] for check in others)


def suite_accuracies(agent: Agent, suites=None) -> dict[str, float | None]:
    """{suite id: accuracy} of each suite's latest finished run on the agent's latest
    saved version (a run of the working copy, or of an older version, is no evidence
    for what moves on). `suites` None: every suite that has such a run."""
    from .models import EvaluationStatus, TestRun

    runs = (
        TestRun.objects.for_org(agent.org_id)
        .filter(agent=agent, version=agent.version, status=EvaluationStatus.SUCCEEDED)
        .order_by("suite_id", "-finished_at")
        .values_list("suite_id", "accuracy")
    )
    if suites is not None:
        runs = runs.filter(suite_id__in=suites)
    latest: dict[str, float | None] = {}
    for suite, accuracy in runs:
        latest.setdefault(str(suite), accuracy)
    return latest


def _accuracy_checks(gate: dict, agent: Agent) -> list[dict]:
    """required_suites (each has a finished run) and min_accuracy (the lowest of them).

    A stage's gate serves every lineage, and suites belong to one: the listed suites of
    the agent's own lineage are required of it. An agent whose lineage has none of them
    is held to min_accuracy over its own suites' runs (none is "no data"), never let
    through by a list that does not concern it, nor shut out by one it cannot run.
    """
    from .models import TestSuite

    listed = [str(s) for s in gate.get("required_suites") or []]
    own = (
        {
            str(pk)
            for pk in TestSuite.objects.for_org(agent.org_id)
            .filter(pk__in=listed, lineage_id=agent.lineage_id)
            .values_list("pk", flat=True)
        }
        if listed
        else set()
    )
    required = [s for s in listed if s in own]
    accuracies = suite_accuracies(agent, required or None) if agent.version else {}
    checks = []
    if required:
        ran = [s for s in required if s in accuracies]
        checks.append(_check("required_suites", ran or NO_DATA, required, len(ran) == len(required)))
    if gate.get("min_accuracy") is not None:
        values = [accuracies.get(s) for s in required] if required else list(accuracies.values())
        if not values or any(v is None for v in values):
            checks.append(_check("min_accuracy", NO_DATA, gate["min_accuracy"], False))
        else:
            lowest, wanted = min(values), gate["min_accuracy"]
            checks.append(_check("min_accuracy", lowest, wanted, lowest >= wanted))
    return checks


def _safety_check(maximum: float, agent: Agent) -> dict:
    """The worst category's defect rate on the agent's latest saved version, live sample and
    latest test run together; neither is "no data", which fails."""
    from .selectors import safety_by_version, safety_worst_rate

    entry = next((e for e in safety_by_version(agent) if e["version"] == agent.version), None)
    worst = safety_worst_rate(entry) if agent.version else None
    if worst is None:
        return _check("max_safety_defect_rate", NO_DATA, maximum, False)
    return _check("max_safety_defect_rate", worst, maximum, worst <= maximum)


# --- the decision -----------------------------------------------------------------------
def _override(access: Access, override_freeze) -> dict | None:
    if override_freeze is None:
        return None
    if not access.is_admin:
        raise Forbidden("Only org owners and admins may override a freeze window.")
    reason = override_freeze.get("reason") if isinstance(override_freeze, dict) else None
    if not isinstance(reason, str) or not reason.strip():
        raise Invalid(fields={"override_freeze.reason": ["Give the reason for overriding the freeze."]})
    return {"by": access.user_ref, "reason": reason.strip()[:500]}


def change_decide(
    *,
    access: Access,
    kind: str,
    agent: Agent,
    target_stage: Stage,
    override_freeze: dict | None = None,
    now: datetime | None = None,
) -> Decision:
    """Ask the target stage's policy about a change; raises nothing but 403/400 on a bad override.

    `agent` is what the gate is evaluated on: the source agent for promote and pull, the
    agent itself for release, restore and back-port.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown change kind {kind!r}")
    override = _override(access, override_freeze)
    now = now or timezone.now()
    document = effective_document(target_stage)
    window = open_window(document["freeze_windows"], now)
    freeze = None
    if window is not None:
        freeze = {"window": window, "overridden": override is not None, "override": override}
    checks, passed = gate_checks(document["gate"], agent, now)
    return Decision(
        kind=kind,
        stage=target_stage.slug,
        stage_name=target_stage.name,
        agent=str(agent.pk),
        decided_at=now.isoformat(),
        freeze=freeze,
        checks=tuple(checks),
        gate_mode=document["gate"].get("mode", "any"),
        gate_passed=passed,
        approvals_required=document["approvals"]["required"] if kind in APPROVAL_KINDS else 0,
        org=access.org,
        agent_name=agent.name,
    )


def decision_record(*, access: Access, decision: Decision, target) -> None:
    """Audit an overridden freeze with its reason (call inside the change's transaction)."""
    if decision.overridden:
        audit_record(
            org=access.org,
            actor=access.user,
            action="stage.freeze_overridden",
            target=target,
            changes={
                "kind": decision.kind,
                "stage": decision.stage,
                "window": decision.freeze["window"],
                "reason": decision.freeze["override"]["reason"],
            },
        )


def change_recheck(*, operation, kind: str, agent: Agent, target_stage: Stage, target) -> Decision:
    """Ask again when the operation runs: a window opened (or a gate now failing) since the
    request fails the operation, and the refusal is audited."""
    from lifecycle.access import access_for

    access = access_for(operation.requested_by, operation.org)
    override = operation.params.get("override_freeze")
    decision = change_decide(
        access=access, kind=kind, agent=agent, target_stage=target_stage, override_freeze=override
    )
    try:
        decision.raise_for_blockers()
    except (Frozen, GateFailed) as exc:
        audit_record(
            org=operation.org,
            actor=operation.requested_by,
            action=f"{operation.kind}.blocked",
            target=target,
            changes={
                "operation": str(operation.pk),
                "code": exc.default_code,
                "decision": decision.to_json(),
            },
        )
        raise
    return decision


# Called inside the transaction of a change that waits for approvals, once its operation
# exists (status awaiting_approval), as opener(access=, operation=, kind=, agent=,
# source_agent=, target_stage=, decision=, reason=). The approvals app registers the
# one that records the request and points the operation's result at it.
APPROVAL_OPENERS: list[Callable] = []


def approval_open(
    *, access: Access, operation, kind: str, agent: Agent, source_agent, target_stage: Stage, decision, reason
) -> None:
    for opener in APPROVAL_OPENERS:
        opener(
            access=access,
            operation=operation,
            kind=kind,
            agent=agent,
            source_agent=source_agent,
            target_stage=target_stage,
            decision=decision,
            reason=reason,
        )


def agent_change_guard(*, access: Access, kind: str, agent: Agent, override_freeze=None) -> dict:
    """The CHANGE_GUARDS entry (agents.hooks): a change agents makes into the agent's own stage."""
    decision = change_decide(
        access=access, kind=kind, agent=agent, target_stage=agent.stage, override_freeze=override_freeze
    )
    decision.raise_for_blockers()
    decision_record(access=access, decision=decision, target=agent)
    return {"decision": decision.to_json()}
