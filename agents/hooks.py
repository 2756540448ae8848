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


@dataclass(frozen=True)
class AgentTab:
    slug: str
    label: str
    url: str


# Tabs other domains add to an agent's pages; each provider gets (access, agent).
AGENT_TABS: list[Callable] = []


def agent_tabs(access, agent) -> list[AgentTab]:
    return [tab for provider in AGENT_TABS for tab in provider(access, agent)]


# Called inside version_write's transaction, with the agent's row locked, as
# callback(actor=, agent=, version=). Rollouts registers the one that makes a new version
# live when the stage does not require releases: agents never decides what is served.
VERSION_WRITTEN: list[Callable] = []


def version_written(*, actor, agent, version) -> None:
    for callback in VERSION_WRITTEN:
        callback(actor=actor, agent=agent, version=version)


# Each provider gets a list of agents and returns {agent id: summary of its active
# release}; rollouts owns releases, the agent's API shows them.
ACTIVE_RELEASES: list[Callable] = []


def annotate_active_releases(agents) -> None:
    """Set `active_release` (a summary dict, or None) on each agent, in one query per provider."""
    found: dict = {}
    for provider in ACTIVE_RELEASES:
        found.update(provider(agents))
    for agent in agents:
        agent.active_release = found.get(agent.pk)


# Each guard gets (access=, kind=, agent=, override_freeze=) before a change lands in the
# agent's own stage (kind "restore"), raises the stage's refusal (423 frozen, 409
# gate_failed, 403 for an override by a non-admin) and returns what to record of its
# decision. rollouts registers the stage-policy decision here; agents cannot import it.
CHANGE_GUARDS: list[Callable] = []


def change_guard(*, access, kind: str, agent, override_freeze=None) -> dict:
    """Ask every registered guard; the merged records go into the change's audit entry."""
    recorded: dict = {}
    for guard in CHANGE_GUARDS:
        recorded.update(guard(access=access, kind=kind, agent=agent, override_freeze=override_freeze) or {})
    return recorded


# Rollouts owns the stage policy; it registers here the reader of its `action_approvals`
# part, as provider(org_id=, stage_id=) -> {"tools": [...], "timeout_seconds": n}.
ACTION_APPROVAL_POLICY: list[Callable] = []


def action_approval_policy(*, org_id, stage_id) -> dict:
    """Which tools of the stage wait for a person, and for how long at most."""
    policy = {"tools": [], "timeout_seconds": 900}
    for provider in ACTION_APPROVAL_POLICY:
        policy = provider(org_id=org_id, stage_id=stage_id)
    return policy


# Called inside the transaction of a change to an agent's components (create, update,
# delete), as callback(agent=). The approvals app voids requests that showed approvers
# the agent's earlier content.
COMPONENTS_CHANGED: list[Callable] = []


def components_changed(*, agent) -> None:
    for callback in COMPONENTS_CHANGED:
        callback(agent=agent)


# Called by `seed_demo` after the demo org and agent exist, as seeder(org=). Later domains
# add their part of the demo (a stage policy, approvals …) without agents importing them.
# Each seeder is idempotent: `seed_demo` runs again on an existing demo.
DEMO_SEEDERS: list[Callable] = []


def demo_seed(*, org) -> list[str]:
    """Run every registered seeder; returns what they report having done."""
    return [done for seeder in DEMO_SEEDERS if (done := seeder(org=org))]


# Each guard gets (agent=, source=) before a conversation starts in the console and raises
# a DomainError to refuse it (rollouts: 402 budget_exhausted when the stage's monthly
# budget is spent and the source is blocked). The error reaches the client as its frame.
CONVERSATION_GUARDS: list[Callable] = []


def conversation_guard(*, agent, source: str) -> None:
    for guard in CONVERSATION_GUARDS:
        guard(agent=agent, source=source)
