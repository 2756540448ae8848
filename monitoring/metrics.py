"""Reading metrics: rollup rows summed into buckets of any size, per version or in total.

A dashboard query reads at most one row per minute, version and source of the window
(1,440 a day per version and source), whatever the number of stored turns. Ratings are
given after a conversation, so they are read from the conversations themselves (only the
rated ones in the window, through the agent/time index).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.db.models import Q

from agents.models import Conversation

from . import histogram
from .models import MetricRollup

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class Totals:
    conversations: int = 0
    turns: int = 0
    errors: int = 0
    latency_count: int = 0
    latency_sum: int = 0
    tokens: int = 0
    cost: Decimal = Decimal(0)
    histogram: list = field(default_factory=histogram.empty)
    rating_sum: int = 0
    rating_count: int = 0

    def add_row(self, row: dict) -> None:
        self.conversations += row["conversations"]
        self.turns += row["turns"]
        self.errors += row["errors"]
        self.latency_count += row["latency_count"]
        self.latency_sum += row["latency_sum"]
        self.tokens += row["tokens"]
        self.cost += row["cost"]
        if row["histogram"]:
            histogram.merge(self.histogram, row["histogram"])

    @property
    def error_rate(self) -> float | None:
        return round(self.errors / self.turns, 6) if self.turns else None

    @property
    def error_percent(self) -> str | None:
        """For pages: 0.24 % stays 0.24 %, never rounded to 0."""
        return None if self.error_rate is None else f"{self.error_rate * 100:.2f}"

    @property
    def rating_avg(self) -> float | None:
        return round(self.rating_sum / self.rating_count, 3) if self.rating_count else None

    @property
    def tokens_per_turn(self) -> float | None:
        return self.tokens / self.turns if self.turns else None

    @property
    def p50(self) -> int | None:
        return self.latency(0.5)

    @property
    def p95(self) -> int | None:
        return self.latency(0.95)

    def latency(self, q: float) -> int | None:
        value = histogram.percentile(self.histogram, q)
        return None if value is None else round(value)

    def as_bucket(self, t: datetime | None = None) -> dict:
        shown = {} if t is None else {"t": t}
        return {
            **shown,
            "conversations": self.conversations,
            "turns": self.turns,
            "errors": self.errors,
            "error_rate": self.error_rate,
            "latency_p50_ms": self.latency(0.5),
            "latency_p95_ms": self.latency(0.95),
            "tokens": self.tokens,
            "cost": f"{self.cost:.6f}",
            "rating_avg": self.rating_avg,
        }


def floor_time(moment: datetime, size: int) -> datetime:
    """The start of the `size`-second bucket holding `moment` (aligned to the epoch)."""
    seconds = int((moment - EPOCH).total_seconds())
    return EPOCH + timedelta(seconds=seconds - seconds % size)


def _rows(org_id, scope: Q, start: datetime, end: datetime, sources):
    rows = MetricRollup.objects.for_org(org_id).filter(scope, bucket__gte=start, bucket__lt=end)
    if sources:
        rows = rows.filter(source__in=sources)
    return rows.order_by().values(
        "version", "bucket", "conversations", "turns", "errors", "latency_count", "latency_sum",
        "histogram", "tokens", "cost",
    )  # fmt: skip


def _ratings(org_id, scope: Q, start: datetime, end: datetime, sources):
    rated = Conversation.objects.for_org(org_id).filter(
        scope, started_at__gte=start, started_at__lt=end, rating__isnull=False, draft=False
    )
    if sources:
        rated = rated.filter(source__in=sources)
    return rated.order_by().values_list("version", "started_at", "rating")


def series(
    *,
    org_id,
    agent_id=None,
    stage_id=None,
    start: datetime,
    end: datetime,
    bucket: int,
    by_version: bool = True,
    sources=None,
    versions=None,
) -> list[dict]:
    """[{"version", "buckets": [{"t", …}]}], every bucket of the window present (zeros
    where nothing happened), oldest first; versions ascending."""
    scope = Q(agent_id=agent_id) if agent_id is not None else Q(stage_id=stage_id)
    if versions is not None:
        scope &= Q(version__in=versions)
    start = floor_time(start, bucket)
    cells: dict = {}
    for row in _rows(org_id, scope, start, end, sources):
        key = (row["version"] if by_version else None, floor_time(row["bucket"], bucket))
        cells.setdefault(key, Totals()).add_row(row)
    for version, started_at, rating in _ratings(org_id, scope, start, end, sources):
        key = (version if by_version else None, floor_time(started_at, bucket))
        totals = cells.setdefault(key, Totals())
        totals.rating_sum += rating
        totals.rating_count += 1
    keys = sorted({version for version, _ in cells}, key=lambda v: (v is None, v))
    if not by_version:
        keys = [None]
    times = []
    t = start
    while t < end:
        times.append(t)
        t += timedelta(seconds=bucket)
    return [
        {"version": version, "buckets": [cells.get((version, t), Totals()).as_bucket(t) for t in times]}
        for version in keys
    ]


def totals(*, org_id, start: datetime, end: datetime, sources=None, **scope) -> Totals:
    """Everything in the window summed (thresholds, the post-deployment report)."""
    where = Q(**scope)
    result = Totals()
    for row in _rows(org_id, where, start, end, sources):
        result.add_row(row)
    for _, _, rating in _ratings(org_id, where, start, end, sources):
        result.rating_sum += rating
        result.rating_count += 1
    return result


def by_agent(*, org_id, stage_id, start: datetime, end: datetime, sources=None) -> dict:
    """{agent id: Totals} over the window for every agent of a stage: two queries."""
    found: dict = {}
    rows = MetricRollup.objects.for_org(org_id).filter(stage_id=stage_id, bucket__gte=start, bucket__lt=end)
    if sources:
        rows = rows.filter(source__in=sources)
    for row in rows.order_by().values(
        "agent_id",
        "conversations",
        "turns",
        "errors",
        "latency_count",
        "latency_sum",
        "histogram",
        "tokens",
        "cost",
    ):
        found.setdefault(row["agent_id"], Totals()).add_row(row)
    rated = Conversation.objects.for_org(org_id).filter(
        stage_id=stage_id, started_at__gte=start, started_at__lt=end, rating__isnull=False, draft=False
    )
    if sources:
        rated = rated.filter(source__in=sources)
    for agent_id, rating in rated.order_by().values_list("agent_id", "rating"):
        totals = found.setdefault(agent_id, Totals())
        totals.rating_sum += rating
        totals.rating_count += 1
    return found
