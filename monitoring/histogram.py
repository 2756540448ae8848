"""Latency histograms with fixed bucket edges, so that buckets from any number of rollup
rows merge by adding counts and percentiles come from the merged counts.

The edges (milliseconds) are finer where answers usually land and include the seed's
thresholds (2 s, 3 s, 5 s) exactly, so a threshold test never straddles a bucket. A
percentile is interpolated linearly inside its bucket: its error is at most that
bucket's width (10 ms at the bottom, 25 % of the value above 1 s).
"""

from __future__ import annotations

import bisect

# Upper edges (exclusive) of each bucket; the last bucket is everything from 120 s up.
EDGES = (
    10, 25, 50, 75, 100, 150, 200, 250, 300, 400, 500, 600, 750, 1000, 1250, 1500,
    2000, 2500, 3000, 4000, 5000, 6000, 8000, 10000, 15000, 20000, 30000, 60000, 120000,
)  # fmt: skip
BUCKETS = len(EDGES) + 1


def bucket_of(latency_ms: int) -> int:
    return bisect.bisect_right(EDGES, latency_ms)


def empty() -> list[int]:
    return [0] * BUCKETS


def merge(into: list[int], other: list[int]) -> list[int]:
    for i, n in enumerate(other):
        into[i] += n
    return into


def percentile(counts: list[int], q: float) -> float | None:
    """The q-th quantile (0 to 1) of the merged histogram, or None with no samples."""
    total = sum(counts)
    if not total:
        return None
    rank = q * total
    seen = 0
    for i, n in enumerate(counts):
        if n and seen + n >= rank:
            low = EDGES[i - 1] if i > 0 else 0
            high = EDGES[i] if i < len(EDGES) else EDGES[-1] * 2
            return low + (high - low) * max(rank - seen, 0) / n
        seen += n
    return float(EDGES[-1])


def width_at(value: float) -> float:
    """The width of the bucket holding `value`: a percentile's resolution there."""
    i = bucket_of(int(value))
    low = EDGES[i - 1] if i > 0 else 0
    high = EDGES[i] if i < len(EDGES) else EDGES[-1] * 2
    return high - low
