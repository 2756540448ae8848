"""Reads for agents. Every function is given the caller's access (or a visible agent)."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from lifecycle.access import Access

from .components import SETTINGS
from .models import Agent, AgentVersion, Component, Conversation, Presence, TestResult, Turn
from .models.presence import PRESENCE_TTL_SECONDS


def agents_visible(access: Access) -> QuerySet[Agent]:
    """Agents in stages the caller holds a role in, and agents shared with them."""
    return access.visible(Agent.objects.for_org(access.org))


def agent_details(agents: QuerySet[Agent], org) -> QuerySet[Agent]:
    """What an agent listing shows, in a constant number of queries."""
    to_review = (
        Component.objects.for_org(org)
        .filter(agent=OuterRef("pk"), needs_review=True)
        .values("agent")
        .annotate(n=Count("id"))
        .values("n")
    )
    agents = agents.annotate(variables_to_review=Coalesce(Subquery(to_review), 0))
    return agents.select_related("lineage", "stage", "owner").prefetch_related(
        Prefetch(
            "components",
            queryset=Component.objects.for_org(org).filter(kind=SETTINGS),
            to_attr="settings_components",
        )
    )


def agent_filters(agents: QuerySet[Agent], params) -> QuerySet[Agent]:
    """?stage= ?lineage= ?search= ?archived= (archived agents are hidden unless asked)."""
    if params.get("stage"):
        agents = agents.filter(stage__slug=params["stage"])
    if params.get("lineage"):
        agents = agents.filter(lineage__slug=params["lineage"])
    if params.get("search"):
        term = params["search"].strip()
        agents = agents.filter(
            Q(name__icontains=term) | Q(description__icontains=term) | Q(lineage__slug=term)
        )
    archived = str(params.get("archived", "")).lower()
    if archived in ("1", "true", "yes"):
        agents = agents.filter(archived_at__isnull=False)
    elif archived not in ("all", "any"):
        agents = agents.filter(archived_at__isnull=True)
    return agents.order_by("-created_at")


def settings_spec(agent: Agent) -> dict:
    prefetched = getattr(agent, "settings_components", None)
    if prefetched is not None:
        return prefetched[0].spec if prefetched else {}
    component = Component.objects.for_org(agent.org_id).filter(agent=agent, kind=SETTINGS).first()
    return component.spec if component else {}


def components_of(agent: Agent, kind: str | None = None) -> QuerySet[Component]:
    components = Component.objects.for_org(agent.org_id).filter(agent=agent)
    if kind:
        components = components.filter(kind=kind)
    return components.order_by("kind", "name", "id")


def versions_of(agent: Agent) -> QuerySet[AgentVersion]:
    return (
        AgentVersion.objects.for_org(agent.org_id)
        .filter(agent=agent)
        .select_related("author", "source_version")
        .order_by("-number")
    )


def active_editors(agents) -> dict:
    """{agent id: [Presence, ...]} of live heartbeats, for a page of agents at once."""
    agents = list(agents)
    if not agents:
        return {}
    cutoff = timezone.now() - timedelta(seconds=PRESENCE_TTL_SECONDS)
    rows = (
        Presence.objects.for_org(agents[0].org_id)
        .filter(agent__in=agents, last_seen__gte=cutoff)
        .select_related("user")
        .order_by("user__email", "module")
    )
    out: dict = {}
    for row in rows:
        out.setdefault(row.agent_id, []).append(row)
    return out


def test_results_of(agent: Agent) -> QuerySet[TestResult]:
    return TestResult.objects.for_org(agent.org_id).filter(agent=agent).select_related("created_by", "stage")


test_results_of.__test__ = False


def conversations_of(agent: Agent, *, source: str | None = None) -> QuerySet[Conversation]:
    queryset = (
        Conversation.objects.for_org(agent.org_id).filter(agent=agent).select_related("stage", "started_by")
    )
    return queryset.filter(source=source) if source else queryset


def conversation_turns(conversation: Conversation) -> QuerySet[Turn]:
    return Turn.objects.for_org(conversation.org_id).filter(conversation=conversation).order_by("index")


def action_approvals_visible(access: Access, queryset: QuerySet | None = None) -> QuerySet:
    """Action approvals in stages the caller holds a role in, newest first."""
    from .models import ActionApproval

    queryset = queryset if queryset is not None else ActionApproval.objects.for_org(access.org)
    return access.visible(queryset, stage_field="stage").order_by("-requested_at", "-id")


def action_approval_metrics(org, stage, version: int | None = None) -> dict:
    """How a stage's (and version's) waiting calls were decided: counts, the approval
    rate (approved among the decided and expired) and the median seconds to a person's
    decision. For gates and monitoring."""
    from statistics import median

    from .models import ActionApproval

    rows = ActionApproval.objects.for_org(org).filter(stage=stage)
    if version is not None:
        rows = rows.filter(version=version)
    counts = dict(rows.values_list("status").annotate(n=Count("id")).order_by())
    durations = [
        (decided - requested).total_seconds()
        for requested, decided in rows.filter(status__in=["approved", "rejected"]).values_list(
            "requested_at", "decided_at"
        )
    ]
    approved, rejected, expired = (counts.get(s, 0) for s in ("approved", "rejected", "expired"))
    closed = approved + rejected + expired
    return {
        "requested": sum(counts.values()),
        "pending": counts.get("pending", 0),
        "approved": approved,
        "rejected": rejected,
        "expired": expired,
        "approval_rate": round(approved / closed, 4) if closed else None,
        "median_seconds_to_decision": round(median(durations), 3) if durations else None,
    }
