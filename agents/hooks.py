"""Small registries through which later domains add to agent pages without agents
importing them (rollouts adds Promote, Pull updates, Back-port and Drift)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class AgentAction:
    label: str
    url: str
    primary: bool = False


# Each provider gets (access, agent) and returns the actions that caller may take.
AGENT_ACTIONS: list[Callable] = []


def agent_actions(access, agent) -> list[AgentAction]:
    return [action for provider in AGENT_ACTIONS for action in provider(access, agent)]
