"""A progressive release's request: steps, analysis thresholds, keep_warm and smoke test.

Validated whole before anything is written; every error names the path of the bad value
(`steps[1].hold`, `analysis.interval`), and the defaults of API.md fill what is left out.
"""

from __future__ import annotations

import copy
import uuid

from lifecycle.errors import Invalid

from .policy import DURATION, duration_seconds
from .suite_schema import validate_turns

DEFAULT_STEPS = {
    "canary": [{"weight": 5, "hold": "1h"}, {"weight": 25, "hold": "2h"}, {"weight": 100}],
    "blue_green": [{"weight": 10, "hold": "1h"}, {"weight": 50, "hold": "2h"}, {"weight": 100}],
    "manual": [{"weight": 100}],
}
DEFAULT_ANALYSIS = {
    "interval": "5m",
    "min_samples": 50,
    "max_error_rate_increase": 0.05,
    "max_latency_increase": 0.5,
    "max_rating_drop": 0.1,
    "max_safety_violations": 0,
    "inconclusive_limit": 3,
    "min_ratings": 20,
}
DEFAULT_KEEP_WARM = "24h"
DEFAULT_SMOKE_TURNS = [{"user": "hello", "expect": []}]
MIN_INTERVAL, MIN_HOLD = 5, 1
MAX_STEPS = 10
# name: (kind, minimum, maximum)
NUMBERS = {
    "min_samples": (int, 1, 1_000_000),
    "max_error_rate_increase": (float, 0.0, 1.0),
    "max_latency_increase": (float, 0.0, 100.0),
    "max_rating_drop": (float, 0.0, 1.0),
    "max_safety_violations": (int, 0, 1_000_000),
    "inconclusive_limit": (int, 1, 1000),
    "min_ratings": (int, 0, 1_000_000),
}


def _duration(value, path: str, minimum: int, errors: dict) -> int | None:
    if not isinstance(value, str) or not DURATION.match(value):
        errors[path] = ['A duration such as "30s", "5m" or "2h".']
        return None
    seconds = duration_seconds(value)
    if seconds < minimum:
        errors[path] = [f"At least {minimum} s."]
        return None
    return seconds


def _steps(strategy: str, steps, errors: dict) -> list[dict]:
    if steps is None:
        return copy.deepcopy(DEFAULT_STEPS[strategy])
    if not isinstance(steps, list) or not steps:
        errors["steps"] = ['A list of steps, each {"weight", "hold"}, the last at weight 100.']
        return []
    if len(steps) > MAX_STEPS:
        errors["steps"] = [f"At most {MAX_STEPS} steps."]
        return []
    out, previous = [], 0
    for i, step in enumerate(steps):
        path = f"steps[{i}]"
        if not isinstance(step, dict):
            errors[path] = ["Expected an object."]
            continue
        unknown = set(step) - {"weight", "hold"}
        if unknown:
            errors[f"{path}.{sorted(unknown)[0]}"] = ["Unknown key."]
        weight = step.get("weight")
        if isinstance(weight, bool) or not isinstance(weight, int) or not 1 <= weight <= 100:
            errors[f"{path}.weight"] = ["A whole percentage from 1 to 100."]
            continue
        if weight <= previous:
            errors[f"{path}.weight"] = ["Weights must grow from step to step."]
        previous = weight
        item = {"weight": weight}
        last = i == len(steps) - 1
        if "hold" in step:
            if weight == 100:
                errors[f"{path}.hold"] = ["The step at 100 % ends the release: it has no hold."]
            elif _duration(step["hold"], f"{path}.hold", MIN_HOLD, errors) is not None:
                item["hold"] = step["hold"]
        elif not last:
            errors[f"{path}.hold"] = ['How long to hold this weight, e.g. "1h".']
        out.append(item)
    if out and out[-1]["weight"] != 100 and f"steps[{len(steps) - 1}].weight" not in errors:
        errors[f"steps[{len(steps) - 1}].weight"] = ["The last step takes all traffic: weight 100."]
    if strategy == "manual" and out and len(out) != 1:
        errors["steps"] = ["A manual release has one step: 100 % once approved."]
    return out


def _analysis(analysis, errors: dict) -> dict:
    config = dict(DEFAULT_ANALYSIS)
    if analysis is None:
        analysis = {}
    if not isinstance(analysis, dict):
        errors["analysis"] = ["Expected an object."]
        return config
    for key, value in analysis.items():
        path = f"analysis.{key}"
        if key == "interval":
            if _duration(value, path, MIN_INTERVAL, errors) is not None:
                config[key] = value
        elif key in NUMBERS:
            kind, low, high = NUMBERS[key]
            ok = not isinstance(value, bool) and (
                isinstance(value, int) if kind is int else isinstance(value, int | float)
            )
            if not ok or not low <= value <= high:
                what = "A whole number" if kind is int else "A number"
                errors[path] = [f"{what} from {low} to {high}."]
            else:
                config[key] = kind(value)
        else:
            errors[path] = ["Unknown key."]
    return config


def _smoke(org_id, strategy: str, smoke, lineage_id, errors: dict) -> dict | None:
    from .models import TestCase, TestSuite

    if strategy != "blue_green":
        if smoke is not None:
            errors["smoke"] = ["Only a blue_green release runs a smoke test."]
        return None
    if smoke is None:
        return {"turns": copy.deepcopy(DEFAULT_SMOKE_TURNS)}
    if not isinstance(smoke, dict) or len(smoke) != 1 or not ({"suite", "turns"} & set(smoke)):
        errors["smoke"] = ['Either {"suite": "<suite id>"} or {"turns": [{"user", "expect"}]}.']
        return None
    if "suite" in smoke:
        try:
            suite_id = uuid.UUID(str(smoke["suite"]))
        except ValueError:
            suite_id = None
        suite = (
            TestSuite.objects.for_org(org_id)
            .filter(pk=suite_id, lineage_id=lineage_id, archived_at__isnull=True)
            .first()
            if suite_id
            else None
        )
        if suite is None:
            errors["smoke.suite"] = ["Choose a suite of this agent's lineage."]
        elif not TestCase.objects.for_org(org_id).filter(suite=suite).exists():
            errors["smoke.suite"] = ["This suite has no cases yet."]
        else:
            return {"suite": str(suite.pk)}
        return None
    turns, turn_errors = validate_turns(smoke["turns"], prefix="smoke.turns")
    errors.update(turn_errors)
    if not turn_errors and not turns:
        errors["smoke.turns"] = ["At least one turn."]
    return {"turns": turns}


def release_config(
    *, agent, strategy: str, steps=None, analysis=None, keep_warm=None, smoke=None
) -> tuple[list[dict], dict]:
    """(steps, config) for a progressive release, or Invalid with every bad path."""
    errors: dict[str, list[str]] = {}
    steps = _steps(strategy, steps, errors)
    config = {"analysis": _analysis(analysis, errors)}
    keep_warm = DEFAULT_KEEP_WARM if keep_warm is None else keep_warm
    if _duration(keep_warm, "keep_warm", 0, errors) is not None:
        config["keep_warm"] = keep_warm
    smoke_config = _smoke(agent.org_id, strategy, smoke, agent.lineage_id, errors)
    if smoke_config is not None:
        config["smoke"] = smoke_config
    if errors:
        raise Invalid(fields=errors)
    return steps, config


def interval_seconds(release) -> int:
    return duration_seconds(release.config.get("analysis", DEFAULT_ANALYSIS)["interval"])


def hold_seconds(release) -> int:
    hold = release.steps[release.step].get("hold") if release.step < len(release.steps) else None
    return duration_seconds(hold) if hold else 0
