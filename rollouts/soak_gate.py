"""The soak gate checks: require_soak and max_error_rate, read from the latest finished
soak of the agent's latest saved version (a soak of the working copy, or of an older
version, is no evidence about what moves on). No such soak is "no data", which fails."""

from __future__ import annotations

from agents.models import Agent

from .models import EvaluationStatus, SoakTest

NO_DATA = "no data"


def latest_soak(agent: Agent) -> SoakTest | None:
    if not agent.version:
        return None
    return (
        SoakTest.objects.for_org(agent.org_id)
        .filter(agent=agent, version=agent.version, status=EvaluationStatus.SUCCEEDED)
        .order_by("-finished_at")
        .first()
    )


def soak_checks(gate: dict, agent: Agent) -> list[dict]:
    soak = latest_soak(agent)
    checks = []
    if gate.get("require_soak"):
        checks.append(
            {
                "name": "require_soak",
                "actual": True if soak else NO_DATA,
                "required": True,
                "passed": bool(soak),
            }
        )
    if gate.get("max_error_rate") is not None:
        wanted = gate["max_error_rate"]
        rate = soak.error_rate if soak else None
        checks.append(
            {
                "name": "max_error_rate",
                "actual": NO_DATA if rate is None else rate,
                "required": wanted,
                "passed": rate is not None and rate <= wanted,
            }
        )
    return checks
