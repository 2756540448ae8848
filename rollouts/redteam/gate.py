"""The gate's max_attack_success_rate check (rollouts/decision.py asks it)."""

from __future__ import annotations

from agents.models import Agent

from ..models import EvaluationStatus, RedTeamRun

NO_DATA = "no data"


def latest_redteam_run(agent: Agent, version: int | None = None) -> RedTeamRun | None:
    """The agent's latest finished red-team run on `version` (default: its latest saved one).

    A run of the working copy, or of an older version, is no evidence for what moves on.
    """
    version = agent.version if version is None else version
    if not version:
        return None
    return (
        RedTeamRun.objects.for_org(agent.org_id)
        .filter(agent=agent, version=version, status=EvaluationStatus.SUCCEEDED)
        .order_by("-finished_at")
        .first()
    )


def attack_success_check(maximum: float, agent: Agent) -> dict:
    """{"name","actual","required","passed"}: the latest run's rate at most `maximum`;
    no run (or one with no attack) is "no data", which fails."""
    run = latest_redteam_run(agent)
    rate = run.attack_success_rate if run is not None else None
    return {
        "name": "max_attack_success_rate",
        "actual": NO_DATA if rate is None else rate,
        "required": maximum,
        "passed": rate is not None and rate <= maximum,
    }
