"""Sticky traffic splits: which version a NEW live conversation gets, with no query.

A release that splits traffic (progressing or paused) sends the conversation key
`"{release id}:{key}"` through murmur3 into one of 10,000 buckets; buckets below
weight x 100 go to the candidate. The threshold only grows as the release advances, so
a key inside the 5 % cohort stays inside at 25 % and 50 %.

The split of each agent is kept in this process and checked against a generation token
in the shared cache (Redis when configured): one cache read per new conversation, and a
database query only after a release changed. Every release transition calls
`routing_changed`, inside its transaction and again once it commits, so no process
keeps routing on a split older than the last commit.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass

import mmh3
from django.core.cache import cache
from django.db import transaction

BUCKETS = 10_000
_routes: dict = {}  # agent id -> (generation, Split | None)
_lock = threading.Lock()


@dataclass(frozen=True)
class Split:
    release_id: str
    stable: int
    candidate: int
    weight: int


def bucket(release_id, key: str) -> int:
    """The key's bucket, 0-9999, for this release."""
    return mmh3.hash(f"{release_id}:{key}", 0, signed=False) % BUCKETS


def to_candidate(release_id, key: str, weight: int) -> bool:
    return bucket(release_id, key) < weight * (BUCKETS // 100)


def _generation_key(agent_id) -> str:
    return f"release-routing:{agent_id}"


def routing_changed(agent_id) -> None:
    """A release of the agent changed: every process reloads its split on its next start."""

    def bump():
        cache.set(_generation_key(agent_id), uuid.uuid4().hex, timeout=None)

    bump()  # readers that load before our commit store a token that is about to change
    transaction.on_commit(bump)


def split_for(agent) -> Split | None:
    """The agent's traffic split, or None when all new conversations get the live version."""
    key = _generation_key(agent.pk)
    generation = cache.get(key)
    if generation is None:
        # First reader since the cache lost it: mint one, so that later reads can hit.
        generation = uuid.uuid4().hex
        if not cache.add(key, generation, timeout=None):
            generation = cache.get(key)
    held = _routes.get(agent.pk)
    if held is not None and generation is not None and held[0] == generation:
        return held[1]
    split = _load(agent)
    with _lock:
        _routes[agent.pk] = (generation, split)
    return split


def _load(agent) -> Split | None:
    from .models import Release, ReleaseStatus

    row = (
        Release.objects.for_org(agent.org_id)
        .filter(agent_id=agent.pk, status__in=(ReleaseStatus.PROGRESSING, ReleaseStatus.PAUSED))
        .values_list("pk", "stable_version", "candidate_version", "weight")
        .first()
    )
    if row is None or row[1] is None:
        return None
    return Split(release_id=str(row[0]), stable=row[1], candidate=row[2], weight=row[3])


def version_for(agent, key: str) -> int | None:
    """The version number a new conversation keyed `key` is served by (None: not live)."""
    split = split_for(agent)
    if split is None:
        return agent.live_version
    if split.weight > 0 and to_candidate(split.release_id, key, split.weight):
        return split.candidate
    return split.stable
