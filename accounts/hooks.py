"""A registry through which later domains add to the Stages page without accounts
importing them (rollouts adds each stage's freeze and spend against its budget)."""

from __future__ import annotations

from collections.abc import Callable

# Each provider gets (access, stages) and returns {stage id: safe HTML} for the stages
# the caller may see it for; the Stages page shows it in the stage's row.
STAGE_SUMMARIES: list[Callable] = []


def stage_summaries(access, stages) -> dict:
    found: dict = {}
    for provider in STAGE_SUMMARIES:
        for stage_id, html in provider(access, stages).items():
            found.setdefault(stage_id, []).append(html)
    return found
