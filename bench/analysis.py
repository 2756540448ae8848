"""Metrics over history: one dashboard query (24 h, 5-minute buckets, per version) from
the minute rollups, against a plain SQL aggregate over the stored turns of the same
window, measured in the same run, as the stored history grows to BENCH_TURNS.

    .venv/bin/python bench/analysis.py             # 1,000,000 turns in 4 steps
    BENCH_TURNS=200000 .venv/bin/python bench/analysis.py

It creates (and drops) its own database, `lifecycle_bench_analysis`, on
BENCH_DATABASE_URL's server. Printed, not asserted. Goals: the metrics query <= 2x the
plain aggregate, and flat as history grows (the aggregate reads the window's turns; the
rollup query reads at most one row per minute, version and source).

Each step adds older history (30 days back), so the 24 h window holds the same traffic
at every step: what grows is only what lies outside it. Every conversation has 10 turns
(5 agent replies), 2 versions, about 1 % errors and answer times up to 2 s.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import setup_django

TURNS = int(os.environ.get("BENCH_TURNS", "1000000"))
STEPS = int(os.environ.get("BENCH_STEPS", "4"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "7"))
TURNS_PER_CONVERSATION = 10
WINDOW = timedelta(hours=24)
HISTORY = timedelta(days=30)


def timed(fn, rounds: int = ROUNDS) -> float:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def add_history(agent, *, conversations: int, newest_age: timedelta, oldest_age: timedelta, now) -> None:
    """`conversations` live conversations spread evenly between the two ages, with turns."""
    from django.db import connection

    from agents.models import Conversation, Turn

    span = (oldest_age - newest_age).total_seconds()
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {Conversation._meta.db_table}
                (id, org_id, agent_id, stage_id, version, draft, source, end_user, variables, overrides,
                 state, turn_count, error_count, tokens_in, tokens_out, cost, rating, started_at)
            SELECT gen_random_uuid(), %(org)s, %(agent)s, %(stage)s, 1 + g %% 2, false, 'live', 'u' || g,
                   '{{}}', '{{}}', '{{}}', {TURNS_PER_CONVERSATION}, 0, 0, 0, 0,
                   CASE WHEN g %% 7 = 0 THEN 1 + g %% 5 END,
                   %(now)s - %(newest)s * interval '1 second' - (g * %(step)s) * interval '1 second'
            FROM generate_series(1, %(n)s) AS g
            RETURNING id
            """,
            {
                "org": agent.org_id,
                "agent": agent.pk,
                "stage": agent.stage_id,
                "now": now,
                "newest": newest_age.total_seconds(),
                "step": span / conversations,
                "n": conversations,
            },
        )
        ids = [row[0] for row in cursor.fetchall()]
        cursor.execute(
            f"""
            INSERT INTO {Turn._meta.db_table}
                (org_id, conversation_id, index, role, text, response_id, interrupted, latency_first_ms,
                 latency_total_ms, tokens_in, tokens_out, cost, details, error, created_at)
            SELECT c.org_id, c.id, i, CASE WHEN i %% 2 = 0 THEN 'user' ELSE 'agent' END, 'text', '', false,
                   CASE WHEN i %% 2 = 1 THEN (random() * 500)::int END,
                   CASE WHEN i %% 2 = 1 THEN (random() * 2000)::int END,
                   CASE WHEN i %% 2 = 1 THEN 20 ELSE 0 END, CASE WHEN i %% 2 = 1 THEN 40 ELSE 0 END,
                   CASE WHEN i %% 2 = 1 THEN 0.0004 ELSE 0 END, '{{}}',
                   CASE WHEN i %% 2 = 1 AND random() < 0.01 THEN '{{"type": "error"}}'::jsonb END,
                   c.started_at + i * interval '5 seconds'
            FROM {Conversation._meta.db_table} c
            CROSS JOIN generate_series(0, {TURNS_PER_CONVERSATION - 1}) AS i
            WHERE c.id = ANY(%(ids)s)
            """,
            {"ids": ids},
        )


def plain_aggregate(agent, start, end) -> list:
    """What a dashboard without rollups runs: the window's turns, grouped in SQL."""
    from django.db import connection

    from agents.models import Conversation, Turn

    timed_turn = "FILTER (WHERE t.role = 'agent' AND t.index > 0 AND t.latency_total_ms IS NOT NULL)"
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT c.version, floor(extract(epoch FROM t.created_at) / 300) AS bucket,
                   count(*) FILTER (WHERE t.index = 0), count(*) FILTER (WHERE t.role = 'agent'),
                   count(t.error), sum(t.tokens_in + t.tokens_out), sum(t.cost),
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY t.latency_total_ms) {timed_turn},
                   percentile_cont(0.95) WITHIN GROUP (ORDER BY t.latency_total_ms) {timed_turn}
            FROM {Turn._meta.db_table} t JOIN {Conversation._meta.db_table} c ON c.id = t.conversation_id
            WHERE t.org_id = %s AND c.agent_id = %s AND t.created_at >= %s AND t.created_at < %s
              AND NOT c.draft
            GROUP BY 1, 2
            """,
            [agent.org_id, agent.pk, start, end],
        )
        return cursor.fetchall()


def main() -> None:
    setup_django(os.environ.get("BENCH_ANALYSIS_DB", "lifecycle_bench_analysis"))
    from django.db import connection
    from django.utils import timezone

    from agents.models import Turn
    from monitoring.rollup import metrics_rollup
    from tests.factories import make_agent, make_org

    org = make_org()
    agent = make_agent(org, "Bench")
    now = timezone.now()
    per_step = TURNS // STEPS // TURNS_PER_CONVERSATION
    # The first step holds the window's traffic (about a thirtieth of it all); the
    # later steps only add older history.
    in_window = per_step // 30
    print(f"turns: {TURNS:,} in {STEPS} steps; {in_window * TURNS_PER_CONVERSATION:,} in the 24 h window")
    for step in range(STEPS):
        if step == 0:
            recent = {"newest_age": timedelta(minutes=2), "oldest_age": WINDOW}
            add_history(agent, conversations=in_window, now=now, **recent)
            rest = per_step - in_window
        else:
            rest = per_step
        older = {"newest_age": WINDOW + timedelta(hours=1), "oldest_age": HISTORY}
        add_history(agent, conversations=rest, now=now, **older)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        started = time.perf_counter()
        rolled = 0
        while True:
            read, more = metrics_rollup(org_id=org.pk, now=timezone.now(), batch=250_000)
            rolled += read
            if not more:
                break
        rollup_seconds = time.perf_counter() - started
        stored = Turn.objects.for_org(org).count()
        measure(org, agent, stored=stored, rolled=rolled, rollup_seconds=rollup_seconds)


def measure(org, agent, *, stored: int, rolled: int, rollup_seconds: float) -> None:
    from django.utils import timezone

    from monitoring.metrics import series

    end = timezone.now()
    start = end - WINDOW

    def metrics_query():
        return series(org_id=org.pk, agent_id=agent.pk, start=start, end=end, bucket=300)

    def baseline():
        return plain_aggregate(agent, start, end)

    ours, theirs = metrics_query(), baseline()
    ours_turns = sum(b["turns"] for s in ours for b in s["buckets"])
    theirs_turns = sum(row[3] for row in theirs)
    metrics_time, baseline_time = timed(metrics_query), timed(baseline)
    print(
        f"stored turns {stored:>9,}: rollup of {rolled:,} new turns {rollup_seconds:.1f} s "
        f"({rolled / rollup_seconds:,.0f}/s); metrics query {metrics_time * 1000:.1f} ms; "
        f"plain aggregate {baseline_time * 1000:.1f} ms; ratio {metrics_time / baseline_time:.2f} "
        f"(goal <= 2); agent turns in window {ours_turns:,} vs {theirs_turns:,}"
    )


if __name__ == "__main__":
    main()
