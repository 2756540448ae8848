"""Which agent and version serve live traffic for a lineage in a stage.

One function decides the version, so releases (traffic splits between a stable and a
candidate version) change exactly one place.
"""

from __future__ import annotations

from agents.models import Agent, AgentVersion
from lifecycle.errors import NotLive


def live_agent(stage, lineage_slug: str) -> Agent | None:
    return (
        Agent.objects.for_org(stage.org_id)
        .filter(stage=stage, lineage__slug=lineage_slug, archived_at__isnull=True)
        .select_related("lineage", "stage")
        .first()
    )


def serving_version(agent: Agent, conversation_key: str = "") -> AgentVersion:
    """The saved version a new live conversation is served by: the agent's live version.

    Only releases move `live_version`; an agent without one serves no live traffic
    (409 `not_live`). `conversation_key` is what a traffic-splitting release will hash
    for a sticky split.
    """
    if agent.live_version is None:
        raise NotLive()
    version = (
        AgentVersion.objects.for_org(agent.org_id)
        .filter(agent=agent, number=agent.live_version)
        .select_related("manifest")
        .first()
    )
    if version is None:  # versions are never deleted; a dangling pointer is not served
        raise NotLive()
    return version
