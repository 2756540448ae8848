"""Who is editing what: heartbeats that expire after two minutes."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from lifecycle.access import Access
from lifecycle.errors import Forbidden, Invalid

from ..models import Agent, Presence
from ..models.presence import PRESENCE_TTL_SECONDS

MODULES = (
    "settings",
    "skills",
    "knowledge",
    "tools",
    "variables",
    "channels",
    "personas",
    "notifications",
    "live_agent_messages",
    "versions",
    "console",
)


def presence_heartbeat(*, access: Access, agent: Agent, module: str) -> Presence:
    """Record that the caller is editing `module`; a streak keeps its `since`."""
    if module not in MODULES:
        raise Invalid(fields={"module": [f"Must be one of: {', '.join(MODULES)}."]})
    if not access.can("change", agent):
        raise Forbidden("Only people who can edit this agent report editing it.")
    now = timezone.now()
    cutoff = now - timedelta(seconds=PRESENCE_TTL_SECONDS)
    presence, created = Presence.objects.for_org(agent.org_id).get_or_create(
        agent=agent,
        user=access.user,
        module=module,
        defaults={"org_id": agent.org_id, "since": now, "last_seen": now},
    )
    if not created:
        if presence.last_seen < cutoff:
            presence.since = now  # the old streak expired: a new one starts
        presence.last_seen = now
        presence.save(update_fields=["since", "last_seen"])
    return presence


def presence_active(agent: Agent):
    cutoff = timezone.now() - timedelta(seconds=PRESENCE_TTL_SECONDS)
    return (
        Presence.objects.for_org(agent.org_id)
        .filter(agent=agent, last_seen__gte=cutoff)
        .select_related("user")
        .order_by("-last_seen", "id")
    )


def presence_purge() -> int:
    """Drop heartbeats long expired (a beat task); every org's, by design."""
    cutoff = timezone.now() - timedelta(hours=1)
    deleted, _ = Presence.objects.dangerously_unscoped().filter(last_seen__lt=cutoff).delete()
    return deleted
