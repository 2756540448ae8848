"""Hand-made conversations at chosen times, through the real recording services."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone

from agents.models import Conversation, Turn
from agents.services.conversations import conversation_rate, conversation_record, conversation_start
from agents.services.versions import version_save
from tests.factories import make_agent, owner_access

__test__ = False


def live_agent(org, name="Support", versions=1):
    """An agent in Development with `versions` versions (its creation is the first); the
    last is live (Development does not require releases: each goes live as a direct release)."""
    agent = make_agent(org, name)
    for n in range(1, versions):
        version_save(access=owner_access(org), agent=agent, changelog=f"v{n + 1}")
    agent.refresh_from_db()
    return agent


def converse(
    agent,
    *,
    at: datetime,
    version: int | None = None,
    replies=((100, None),),
    greeting: bool = True,
    tokens=(10, 20),
    cost="0.001000",
    source="live",
    rating: int | None = None,
    draft: bool = False,
) -> Conversation:
    """One conversation at `at`: an optional greeting, then per (latency ms, error) a user
    turn and the agent's reply."""
    conversation = conversation_start(
        agent=agent, version=version or agent.live_version, draft=draft, source=source, end_user="u"
    )
    turns, index = [], 0
    if greeting:
        turns.append(
            {"index": 0, "role": "agent", "text": "Hi!", "latency_first_ms": 0, "latency_total_ms": 0}
        )
        index = 1
    for latency, error in replies:
        turns.append({"index": index, "role": "user", "text": "hello"})
        turns.append(
            {
                "index": index + 1,
                "role": "agent",
                "text": "Hi there",
                "latency_first_ms": latency // 2,
                "latency_total_ms": latency,
                "tokens_in": tokens[0],
                "tokens_out": tokens[1],
                "cost": cost,
                "error": error,
            }
        )
        index += 2
    conversation_record(conversation=conversation, turns=turns)
    Turn.objects.for_org(agent.org_id).filter(conversation=conversation).update(created_at=at)
    Conversation.objects.for_org(agent.org_id).filter(pk=conversation.pk).update(started_at=at)
    if rating is not None:
        conversation_rate(conversation=conversation, rating=rating)
    return conversation


def minute(offset_minutes: float = 0, base: datetime | None = None) -> datetime:
    """A time on a whole minute `offset_minutes` from the start of this minute."""
    base = base or timezone.now()
    return base.replace(second=0, microsecond=0) + timedelta(minutes=offset_minutes)
