"""Which agent and version serve live traffic for a lineage in a stage.

One function decides the version, so releases (traffic splits between a stable and a
candidate version) change exactly one place.
"""

from __future__ import annotations

from agents.models import Agent, AgentVersion
from lifecycle.errors import NotLive

from .traffic import version_for


def live_agent(stage, lineage_slug: str) -> Agent | None:
    return (
        Agent.objects.for_org(stage.org_id)
        .filter(stage=stage, lineage__slug=lineage_slug, archived_at__isnull=True)
        .select_related("lineage", "stage")
        .first()
    )


def serving_version(agent: Agent, conversation_key: str = "") -> AgentVersion:
    """The saved version a new live conversation is served by.

    The agent's live version, or, while a release splits its traffic, the stable or the
    candidate version by the sticky hash of `conversation_key` (rollouts.traffic, no
    query). An agent without a live version serves no live traffic (409 `not_live`).
    """
    number = version_for(agent, conversation_key)
    if number is None:
        raise NotLive()
    version = (
        AgentVersion.objects.for_org(agent.org_id)
        .filter(agent=agent, number=number)
        .select_related("manifest")
        .first()
    )
    if version is None:  # versions are never deleted; a dangling pointer is not served
        raise NotLive()
    return version
