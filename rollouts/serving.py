"""Which agent and version serve live traffic for a lineage in a stage.

One function decides the version, so releases (traffic splits between a stable and a
candidate version) change exactly one place.
"""

from __future__ import annotations

from agents.models import Agent, AgentVersion


def live_agent(stage, lineage_slug: str) -> Agent | None:
    return (
        Agent.objects.for_org(stage.org_id)
        .filter(stage=stage, lineage__slug=lineage_slug, archived_at__isnull=True)
        .select_related("lineage", "stage")
        .first()
    )


def serving_version(agent: Agent, conversation_key: str = "") -> AgentVersion:
    """The saved version a new live conversation is served by: for now the latest.

    `conversation_key` is what a release will hash for a sticky split.
    """
    return (
        AgentVersion.objects.for_org(agent.org_id)
        .filter(agent=agent)
        .select_related("manifest")
        .order_by("-number")
        .first()
    )
