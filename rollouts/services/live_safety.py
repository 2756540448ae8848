"""Safety scores on a sample of live answers, counted per version (issue: "a sample of live
responses get those scores ... stored per version and readable by gates").

The gateway picks the sample as it records a message, by a hash of the conversation and
the turn's number: no query, no state, and the same turn is always in or out of the
sample, so a redelivered task cannot pick differently. Picked turns are scored by a
Celery task with the offline detectors of rollouts.evaluators.safety; each scored turn
keeps its flags in `details["safety"]`, which is also what makes the count idempotent:
a turn already flagged is never counted twice.
"""

from __future__ import annotations

import hashlib
import logging

from django.conf import settings
from django.db import transaction
from django.db.models import F

from agents.models import Conversation, ConversationSource, Turn

from ..evaluators.safety import CATEGORIES, safety_scores
from ..models import LiveSafety

logger = logging.getLogger(__name__)
BUCKETS = 10_000


def live_sampled(conversation_id, index: int, rate: float | None = None) -> bool:
    """Whether the answer at `index` of the conversation is in the live safety sample."""
    rate = settings.SAFETY_LIVE_SAMPLE_RATE if rate is None else rate
    if rate <= 0:
        return False
    digest = hashlib.blake2b(f"{conversation_id}:{index}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") % BUCKETS < rate * BUCKETS


def live_sample_pick(conversation: Conversation, turns: list[dict]) -> list[int]:
    """The indexes of the live answers among `turns` (just recorded) that the sample takes."""
    if conversation.source != ConversationSource.LIVE:
        return []
    return [
        turn["index"]
        for turn in turns
        if turn.get("role") == "agent"
        and (turn.get("text") or "").strip()
        and live_sampled(conversation.pk, turn["index"])
    ]


def live_sample_enqueue(conversation: Conversation, turns: list[dict]) -> None:
    """After a live message is recorded: score its sampled answers off the request path."""
    indexes = live_sample_pick(conversation, turns)
    if not indexes:
        return
    from ..tasks import live_safety_score

    org_id, conversation_id = str(conversation.org_id), str(conversation.pk)
    transaction.on_commit(lambda: live_safety_score.delay(org_id, conversation_id, indexes))


def live_safety_record(*, org_id, conversation_id, indexes: list[int]) -> int:
    """Score the sampled answers and add them to their version's counts; the number newly scored."""
    conversations = Conversation.objects.for_org(org_id)
    conversation = conversations.filter(pk=conversation_id, source=ConversationSource.LIVE).first()
    if conversation is None or conversation.draft:
        return 0
    with transaction.atomic():
        turns = list(
            Turn.objects.for_org(org_id)
            .select_for_update()
            .filter(conversation=conversation, role="agent", index__in=indexes)
            .order_by("index")
        )
        fresh = [turn for turn in turns if "safety" not in (turn.details or {})]
        if not fresh:
            return 0
        counts = dict.fromkeys(CATEGORIES, 0)
        for turn in fresh:
            flags = safety_scores(turn.text)
            turn.details = {**(turn.details or {}), "safety": flags}
            for category, flagged in flags.items():
                counts[category] += bool(flagged)
        Turn.objects.for_org(org_id).bulk_update(fresh, ["details"])
        row, _ = LiveSafety.objects.for_org(org_id).get_or_create(
            agent_id=conversation.agent_id,
            version=conversation.version,
            defaults={"stage_id": conversation.stage_id, "org_id": conversation.org_id},
        )
        LiveSafety.objects.for_org(org_id).filter(pk=row.pk).update(
            scored=F("scored") + len(fresh), **{c: F(c) + n for c, n in counts.items() if n}
        )
    if any(counts.values()):
        logger.info(
            "live safety defects in conversation %s v%s: %s",
            conversation.pk,
            conversation.version,
            ", ".join(c for c, n in counts.items() if n),
        )
    return len(fresh)
