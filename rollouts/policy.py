"""A stage's policy document: its defaults, its validation and the questions asked of it.

The document (API.md "Stage policy") holds the rules for changes INTO a stage. It is
stored whole in rollouts.models.StagePolicy; a stage without a row has the defaults,
which are "no rule" except `releases.required`, true only for the org's last stage.
Validation is strict (unknown keys, types, ranges) because a typo in a freeze window
must not silently mean "no freeze": errors name the dotted path of the bad value.
"""

from __future__ import annotations

import copy
import re
import uuid
from datetime import datetime, time
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from django.core.cache import cache
from django.db import transaction
from django.utils.dateparse import parse_datetime

from accounts.models import Stage
from lifecycle.access import Access
from lifecycle.audit import audit_record
from lifecycle.errors import Forbidden, Invalid
from rollouts.models import StagePolicy

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SOURCES = ("console", "test_run", "soak", "live")
STRATEGIES = ("direct", "canary", "blue_green", "manual")
THRESHOLDS = ("latency_p95_ms", "error_rate", "rating_avg", "tokens_per_turn_increase", "safety_violations")
MAX_WINDOWS = 50
MAX_TEXT = 500
DURATION = re.compile(r"^([1-9][0-9]{0,5})([smhd])$")
DURATION_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
HHMM = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")

DEFAULTS: dict = {
    "gate": {
        "min_executions": None,
        "min_days": None,
        "mode": "any",
        "count_sources": ["live", "soak", "test_run"],
        "required_suites": [],
        "min_accuracy": None,
        "max_attack_success_rate": None,
        "require_soak": False,
        "max_error_rate": None,
        "max_safety_defect_rate": None,
    },
    # groups: [{"name", "members": [user id], "required"}], quotas of named reviewers.
    "approvals": {"required": 0, "expires_in_hours": 72, "groups": []},
    "freeze_windows": [],
    # None: the org's last stage requires releases, the others do not (resolved on read).
    "releases": {"required": None, "default_strategy": "direct"},
    "action_approvals": {"tools": [], "timeout": "15m"},
    "spending": {"monthly_budget": None, "alert_at": 0.8, "block": []},
    "thresholds": {},
}


# --- reading ----------------------------------------------------------------------------
def stored_document(stage: Stage) -> dict:
    """The document as stored for the stage ({} when it has no policy row)."""
    policy = StagePolicy.objects.for_org(stage.org_id).filter(stage=stage).first()
    return copy.deepcopy(policy.document) if policy else {}


def is_last_stage(stage: Stage) -> bool:
    """Whether no stage of the org comes after this one (the org's production)."""
    return not Stage.objects.for_org(stage.org_id).filter(position__gt=stage.position).exists()


def effective_document(stage: Stage, stored: dict | None = None) -> dict:
    """The full document the stage obeys: every part present, defaults filled in."""
    stored = stored_document(stage) if stored is None else stored
    document = copy.deepcopy(DEFAULTS)
    for part, value in stored.items():
        if isinstance(document.get(part), dict) and part != "thresholds":
            document[part].update(value)
        else:
            document[part] = value
    if document["releases"]["required"] is None:
        document["releases"]["required"] = is_last_stage(stage)
    return document


def releases_required(stage: Stage) -> bool:
    """Whether new versions in the stage wait for a release before they go live.

    The policy's `releases.required` when set; otherwise true only for the org's last
    stage, so production never changes what it serves without a release.
    """
    releases = stored_document(stage).get("releases") or {}
    required = releases.get("required")
    if required is None:
        return is_last_stage(stage)
    return bool(required)


def duration_seconds(value: str) -> int:
    """Seconds in a validated duration such as "90s", "5m", "2h" or "1d"."""
    match = DURATION.match(value)
    return int(match.group(1)) * DURATION_SECONDS[match.group(2)]


# --- validation -------------------------------------------------------------------------
class _Errors:
    def __init__(self):
        self.fields: dict[str, list[str]] = {}

    def add(self, path: str, message: str) -> None:
        self.fields.setdefault(path, []).append(message)


def _object(errors: _Errors, path: str, value, allowed) -> dict | None:
    if not isinstance(value, dict):
        errors.add(path or "non_field_errors", "Expected an object.")
        return None
    for key in value:
        if key not in allowed:
            errors.add(f"{path}.{key}" if path else str(key), "Unknown key.")
    return value


def _text(errors, path, value, *, required=False, max_length=MAX_TEXT) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str):
        errors.add(path, "Expected a string.")
        return None
    if "\x00" in value or any(0xD800 <= ord(ch) <= 0xDFFF for ch in value):
        errors.add(path, "Text may not contain NUL or unpaired surrogates.")
        return None
    if required and not value.strip():
        errors.add(path, "This field may not be blank.")
        return None
    if len(value) > max_length:
        errors.add(path, f"At most {max_length} characters.")
        return None
    return value


def _number(errors, path, value, *, low=None, high=None, integer=False, nullable=True):
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
        errors.add(path, "Expected an integer." if integer else "Expected a number.")
        return None
    if (low is not None and value < low) or (high is not None and value > high):
        errors.add(path, f"Must be between {low} and {high}." if high is not None else f"Must be ≥ {low}.")
        return None
    return value


def _bool(errors, path, value, *, nullable=False):
    if value is None and nullable:
        return None
    if not isinstance(value, bool):
        errors.add(path, "Expected true or false.")
        return None
    return value


def _choice(errors, path, value, choices):
    if value not in choices:
        errors.add(path, f"Expected one of: {', '.join(choices)}.")
        return None
    return value


def _list(errors, path, value, item, *, max_items=100, unique=True) -> list:
    if not isinstance(value, list):
        errors.add(path, "Expected a list.")
        return []
    if len(value) > max_items:
        errors.add(path, f"At most {max_items} items.")
        return []
    result = [item(f"{path}.{n}", entry) for n, entry in enumerate(value)]
    if unique and len({repr(r) for r in result}) < len(result):
        errors.add(path, "Items must be unique.")
    return result


def _duration(errors, path, value):
    if not isinstance(value, str) or not DURATION.match(value):
        errors.add(path, 'Expected a duration such as "90s", "5m", "2h" or "1d".')
        return None
    return value


def _hhmm(errors, path, value):
    if not isinstance(value, str) or not HHMM.match(value):
        errors.add(path, 'Expected a time "HH:MM" (24-hour).')
        return None
    return value


def _timezone(errors, path, value):
    # available_timezones() keeps out paths like "../etc" and bare files zoneinfo would accept.
    if not isinstance(value, str) or value not in _zones():
        errors.add(path, 'Expected an IANA time zone such as "Europe/Berlin".')
        return None
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        errors.add(path, "Unknown time zone.")
        return None
    return value


_ZONES: set[str] = set()


def _zones() -> set[str]:
    if not _ZONES:
        _ZONES.update(available_timezones())
    return _ZONES


def _datetime(errors, path, value):
    parsed = parse_datetime(value) if isinstance(value, str) and len(value) <= 40 else None
    if parsed is None or parsed.tzinfo is None:
        errors.add(path, "Expected an ISO 8601 date-time with a time zone offset.")
        return None
    return parsed


def _gate(errors: _Errors, value) -> dict:
    path = "gate"
    if _object(errors, path, value, DEFAULTS["gate"]) is None:
        return {}
    gate = {}
    for key in ("min_executions",):
        if key in value:
            gate[key] = _number(errors, f"{path}.{key}", value[key], low=0, high=10**9, integer=True)
    if "min_days" in value:
        gate["min_days"] = _number(errors, f"{path}.min_days", value["min_days"], low=0, high=3650)
    if "mode" in value:
        gate["mode"] = _choice(errors, f"{path}.mode", value["mode"], ("any", "all"))
    if "count_sources" in value:
        gate["count_sources"] = _list(
            errors,
            f"{path}.count_sources",
            value["count_sources"],
            lambda p, v: _choice(errors, p, v, SOURCES),
        )
    if "required_suites" in value:

        def suite(p, v):
            try:
                return str(uuid.UUID(v))
            except (TypeError, ValueError, AttributeError):
                errors.add(p, "Expected a suite id.")
                return None

        gate["required_suites"] = _list(errors, f"{path}.required_suites", value["required_suites"], suite)
    for key in ("min_accuracy", "max_attack_success_rate", "max_error_rate", "max_safety_defect_rate"):
        if key in value:
            gate[key] = _number(errors, f"{path}.{key}", value[key], low=0, high=1)
    if "require_soak" in value:
        gate["require_soak"] = _bool(errors, f"{path}.require_soak", value["require_soak"])
    return gate


def _approvals(errors, value) -> dict:
    if _object(errors, "approvals", value, DEFAULTS["approvals"]) is None:
        return {}
    approvals = {}
    if "required" in value:
        approvals["required"] = _number(
            errors, "approvals.required", value["required"], low=0, high=10, integer=True, nullable=False
        )
    if "expires_in_hours" in value:
        approvals["expires_in_hours"] = _number(
            errors,
            "approvals.expires_in_hours",
            value["expires_in_hours"],
            low=1,
            high=720,
            integer=True,
            nullable=False,
        )
    if "groups" in value:
        approvals["groups"] = _list(errors, "approvals.groups", value["groups"], _group(errors), max_items=10)
        names = [group.get("name") for group in approvals["groups"] if group.get("name")]
        if len(set(names)) < len(names):
            errors.add("approvals.groups", "Group names must be unique.")
        if approvals["groups"] and not approvals.get("required"):
            errors.add("approvals.required", "Groups need approvals: set required to at least 1.")
    return approvals


def _group(errors):
    def member(path, value):
        try:
            return str(uuid.UUID(value))
        except (TypeError, ValueError, AttributeError):
            errors.add(path, "Expected a user id.")
            return None

    def group(path, value) -> dict:
        if _object(errors, path, value, ("name", "members", "required")) is None:
            return {}
        result = {"name": _text(errors, f"{path}.name", value.get("name"), required=True, max_length=100)}
        members = _list(errors, f"{path}.members", value.get("members"), member)
        if isinstance(value.get("members"), list) and not value["members"]:
            errors.add(f"{path}.members", "Name at least one member.")
        result["members"] = members
        result["required"] = _number(
            errors,
            f"{path}.required",
            value.get("required", 1),
            low=1,
            high=100,
            integer=True,
            nullable=False,
        )
        if result["required"] is not None and members and result["required"] > len(members):
            errors.add(f"{path}.required", "More approvals than the group has members.")
        return result

    return group


def _group_members_belong(errors: _Errors, org_id, approvals: dict) -> None:
    """Every group member is a member of the org (ids are checked against it, never trusted)."""
    from accounts.models import Membership

    ids = {m for group in approvals.get("groups") or [] for m in group.get("members") or [] if m}
    if not ids:
        return
    known = {
        str(u)
        for u in Membership.objects.for_org(org_id).filter(user_id__in=ids).values_list("user_id", flat=True)
    }
    for n, group in enumerate(approvals.get("groups") or []):
        for m, member in enumerate(group.get("members") or []):
            if member and member not in known:
                errors.add(f"approvals.groups.{n}.members.{m}", "Not a member of this organization.")


WEEKLY_KEYS = ("id", "kind", "days", "start", "end_day", "end", "timezone", "reason")
ONCE_KEYS = ("id", "kind", "starts_at", "ends_at", "reason")


def _window(errors: _Errors, path: str, value) -> dict:
    if not isinstance(value, dict):
        errors.add(path, "Expected an object.")
        return {}
    kind = _choice(errors, f"{path}.kind", value.get("kind"), ("weekly", "once"))
    if kind is None:
        return {}
    _object(errors, path, value, WEEKLY_KEYS if kind == "weekly" else ONCE_KEYS)
    window_id = value.get("id")
    if window_id is None or window_id == "":
        window_id = uuid.uuid4().hex[:12]  # so overrides and 423s can name the window
    elif not isinstance(window_id, str) or not re.fullmatch(r"[-A-Za-z0-9_]{1,64}", window_id):
        errors.add(f"{path}.id", "Expected letters, digits, - or _ (at most 64).")
    window = {
        "id": window_id,
        "kind": kind,
        "reason": _text(errors, f"{path}.reason", value.get("reason", "")),
    }
    if kind == "weekly":
        days = value.get("days")
        window["days"] = _list(errors, f"{path}.days", days, lambda p, v: _choice(errors, p, v, WEEKDAYS))
        if isinstance(days, list) and not days:
            errors.add(f"{path}.days", "Name at least one day.")
        for key in ("start", "end"):
            if key not in value:
                errors.add(f"{path}.{key}", "This field is required.")
            else:
                window[key] = _hhmm(errors, f"{path}.{key}", value[key])
        if value.get("end_day") is not None:
            window["end_day"] = _choice(errors, f"{path}.end_day", value["end_day"], WEEKDAYS)
        window["timezone"] = _timezone(errors, f"{path}.timezone", value.get("timezone", "UTC"))
    else:
        starts = _datetime(errors, f"{path}.starts_at", value.get("starts_at"))
        ends = _datetime(errors, f"{path}.ends_at", value.get("ends_at"))
        if starts and ends and ends <= starts:
            errors.add(f"{path}.ends_at", "Must be after starts_at.")
        window["starts_at"] = starts.isoformat() if starts else None
        window["ends_at"] = ends.isoformat() if ends else None
    return window


def _windows(errors, value) -> list:
    windows = _list(
        errors, "freeze_windows", value, lambda p, v: _window(errors, p, v), max_items=MAX_WINDOWS
    )
    seen = set()
    for n, window in enumerate(windows):
        if window.get("id") in seen:
            errors.add(f"freeze_windows.{n}.id", "Window ids must be unique.")
        seen.add(window.get("id"))
    return windows


def _releases(errors, value) -> dict:
    if _object(errors, "releases", value, DEFAULTS["releases"]) is None:
        return {}
    releases = {}
    if "required" in value:
        releases["required"] = _bool(errors, "releases.required", value["required"], nullable=True)
    if "default_strategy" in value:
        releases["default_strategy"] = _choice(
            errors, "releases.default_strategy", value["default_strategy"], STRATEGIES
        )
    return releases


def _action_approvals(errors, value) -> dict:
    if _object(errors, "action_approvals", value, DEFAULTS["action_approvals"]) is None:
        return {}
    result = {}
    if "tools" in value:
        result["tools"] = _list(
            errors,
            "action_approvals.tools",
            value["tools"],
            lambda p, v: _text(errors, p, v, required=True, max_length=100),
        )
    if "timeout" in value:
        result["timeout"] = _duration(errors, "action_approvals.timeout", value["timeout"])
    return result


def _spending(errors, value) -> dict:
    if _object(errors, "spending", value, DEFAULTS["spending"]) is None:
        return {}
    result = {}
    if "monthly_budget" in value and value["monthly_budget"] is not None:
        budget = value["monthly_budget"]
        try:
            amount = Decimal(budget) if isinstance(budget, str) and len(budget) <= 20 else None
        except InvalidOperation:
            amount = None
        if amount is None or not amount.is_finite() or amount < 0 or amount.as_tuple().exponent < -2:
            errors.add("spending.monthly_budget", 'Expected an amount as a string, such as "500.00".')
        else:
            result["monthly_budget"] = f"{amount:.2f}"
    elif "monthly_budget" in value:
        result["monthly_budget"] = None
    if "alert_at" in value:
        result["alert_at"] = _number(
            errors, "spending.alert_at", value["alert_at"], low=0, high=1, nullable=False
        )
    if "block" in value:
        result["block"] = _list(
            errors, "spending.block", value["block"], lambda p, v: _choice(errors, p, v, SOURCES)
        )
    return result


def _thresholds(errors, value) -> dict:
    if _object(errors, "thresholds", value, THRESHOLDS) is None:
        return {}
    result = {}
    for metric, levels in value.items():
        path = f"thresholds.{metric}"
        if metric not in THRESHOLDS or _object(errors, path, levels, ("warning", "critical")) is None:
            continue
        if not levels:
            errors.add(path, "Give a warning or a critical level.")
        result[metric] = {
            level: _number(errors, f"{path}.{level}", levels[level], low=0, high=10**9, nullable=False)
            for level in ("warning", "critical")
            if level in levels
        }
    return result


PARTS = {
    "gate": _gate,
    "approvals": _approvals,
    "freeze_windows": _windows,
    "releases": _releases,
    "action_approvals": _action_approvals,
    "spending": _spending,
    "thresholds": _thresholds,
}


def policy_validate(document) -> dict:
    """The normalized document to store, or Invalid with a dotted path per bad value."""
    errors = _Errors()
    if _object(errors, "", document, PARTS) is None:
        raise Invalid("The policy must be a JSON object.", fields=errors.fields)
    normalized = {part: PARTS[part](errors, value) for part, value in document.items() if part in PARTS}
    if errors.fields:
        raise Invalid(fields=errors.fields)
    return normalized


def _changed_parts(before: dict, after: dict) -> dict:
    """Which parts changed, with their old and new values (the policy holds no secrets)."""
    return {
        part: {"from": before.get(part), "to": after.get(part)}
        for part in sorted(set(before) | set(after))
        if before.get(part) != after.get(part)
    }


def stage_policy_update(*, access: Access, stage: Stage, document) -> dict:
    """Replace the stage's whole policy document (org owners and admins), audited."""
    if not access.is_admin:
        raise Forbidden("Only org owners and admins change a stage's policy.")
    normalized = policy_validate(document)
    errors = _Errors()
    _group_members_belong(errors, access.org.pk, normalized.get("approvals") or {})
    if errors.fields:
        raise Invalid(fields=errors.fields)
    with transaction.atomic():
        policy = StagePolicy.objects.for_org(access.org).select_for_update().filter(
            stage=stage
        ).first() or StagePolicy(org=access.org, stage=stage)
        before = effective_document(stage, {} if policy._state.adding else policy.document)
        policy.document = normalized
        policy.updated_by = access.user
        policy.save()
        after = effective_document(stage, normalized)
        audit_record(
            org=access.org,
            actor=access.user,
            action="stage.policy_updated",
            target=stage,
            changes={"stage": stage.slug, "changed": _changed_parts(before, after)},
        )
        # The next live message reads the new tools, not a copy cached before the change.
        transaction.on_commit(lambda: cache.delete(ACTION_APPROVALS_CACHE.format(stage=stage.pk)))
        if before["spending"] != after["spending"]:
            # A new budget acts on the next conversation, and its alert follows at once.
            transaction.on_commit(lambda: _spending_changed(stage), robust=True)
    return after


def _spending_changed(stage: Stage) -> None:
    from .spending import budget_state

    budget_state(stage, refresh=True)


def window_times(window: dict) -> tuple[time, time]:
    """A weekly window's start and end times."""
    start = datetime.strptime(window["start"], "%H:%M").time()
    end = datetime.strptime(window["end"], "%H:%M").time()
    return start, end


# --- action approvals, read on every live message ----------------------------------------
ACTION_APPROVALS_CACHE = "action-approvals:{stage}"
ACTION_APPROVALS_TTL = 60


def action_approval_policy(*, org_id, stage_id) -> dict:
    """The stage's `action_approvals` as the runtime needs them, from the cache when it
    can: the gateway reads this for every message and stays at its few statements."""
    key = ACTION_APPROVALS_CACHE.format(stage=stage_id)
    found = cache.get(key)
    if found is None:
        policy = StagePolicy.objects.for_org(org_id).filter(stage_id=stage_id).first()
        part = {
            **DEFAULTS["action_approvals"],
            **((policy.document if policy else {}).get("action_approvals") or {}),
        }
        found = {"tools": list(part["tools"]), "timeout_seconds": duration_seconds(part["timeout"])}
        cache.set(key, found, ACTION_APPROVALS_TTL)
    return found
