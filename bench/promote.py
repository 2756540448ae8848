"""Promote and pull-preview benchmark on PostgreSQL, against raw baselines in the same run.

    .venv/bin/python bench/promote.py            # 10,000 components
    BENCH_COMPONENTS=2000 .venv/bin/python bench/promote.py

It creates (and drops) its own database, `lifecycle_bench`, on BENCH_DATABASE_URL's
server. Printed, not asserted. Goals: promote <= 2x a raw INSERT ... SELECT of the same
rows; preview <= 2x selecting (uid, hash) of both sides; queries constant in N.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SERVER = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
BENCH_DB = "lifecycle_bench"
N = int(os.environ.get("BENCH_COMPONENTS", "10000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))

os.environ["DATABASE_URL"] = SERVER.rsplit("/", 1)[0] + "/" + BENCH_DB
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lifecycle.settings")
os.environ.setdefault("LIFECYCLE_VAR_DIR", "/tmp/lifecycle-bench")
os.environ.pop("REDIS_URL", None)
# The benchmark calls the operation itself; run any enqueued task in-process, not via a broker.
os.environ["CELERY_TASK_ALWAYS_EAGER"] = "1"


def recreate_database() -> None:
    import psycopg

    with psycopg.connect(SERVER.replace("postgres://", "postgresql://"), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {BENCH_DB}")


def fill(agent, count: int) -> None:
    """Mixed kinds: 60% knowledge (~2 KB bodies), 30% skills, 10% tools."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO agents_component
                (org_id, agent_id, uid, kind, name, spec, content_hash, synced_hash, needs_review,
                 created_at, updated_at)
            SELECT %(org)s, %(agent)s, gen_random_uuid(),
                   CASE WHEN n %% 10 < 6 THEN 'knowledge' WHEN n %% 10 < 9 THEN 'skill' ELSE 'tool' END,
                   'c-' || n,
                   CASE WHEN n %% 10 < 6
                        THEN jsonb_build_object('title', 'Doc ' || n, 'body', repeat(md5(n::text), 62))
                        WHEN n %% 10 < 9
                        THEN jsonb_build_object('utterances', jsonb_build_array('ask ' || n, 'query ' || n),
                                                'responses', jsonb_build_array('Answer ' || n))
                        ELSE jsonb_build_object('description', 'Tool ' || n, 'parameters', '{}'::jsonb,
                                                'response', jsonb_build_object('n', n)) END,
                   md5(n::text) || md5('h' || n::text), '', false, now(), now()
            FROM generate_series(1, %(count)s) AS n
            """,
            {"org": agent.org_id, "agent": agent.pk, "count": count},
        )


def timed(fn, rounds: int = ROUNDS) -> float:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    recreate_database()
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from agents.models import Agent, Component
    from lifecycle.operations import operation_execute
    from rollouts.services.promotion import agent_promote
    from rollouts.services.pull import pull_preview
    from tests.factories import make_agent, make_org, owner_access

    call_command("migrate", verbosity=0)
    org = make_org(name="Bench", slug="bench")
    access = owner_access(org)

    def promote_once(agent) -> Agent:
        operation = agent_promote(access=access, agent=agent, confirm="accept")
        operation_execute(org_id=str(org.pk), operation_id=str(operation.pk))
        clone = Agent.objects.for_org(org).get(
            lineage=agent.lineage, stage__slug="testing", archived_at__isnull=True
        )
        return clone

    def archive(agent) -> None:
        Agent.objects.for_org(org).filter(pk=agent.pk).update(archived_at=timezone.now())

    # --- promote vs. a raw INSERT … SELECT of the same rows ---------------------------
    source = make_agent(org, "Big agent")
    fill(source, N)
    rows = Component.objects.for_org(org).filter(agent=source).count()
    scratch = make_agent(org, "Scratch")

    def baseline_copy():
        with connection.cursor() as cursor:
            cursor.execute(
                """
                INSERT INTO agents_component
                    (org_id, agent_id, uid, kind, name, spec, content_hash, synced_hash, needs_review,
                     created_at, updated_at)
                SELECT org_id, %s, uid, kind, name, spec, content_hash, content_hash, false, now(), now()
                FROM agents_component WHERE agent_id = %s AND kind <> 'settings'
                """,
                [scratch.pk, source.pk],
            )
        with connection.cursor() as cursor:
            cursor.execute(
                "DELETE FROM agents_component WHERE agent_id = %s AND kind <> 'settings'", [scratch.pk]
            )

    def promote_round():
        archive(promote_once(source))

    baseline_copy()  # warm caches alike
    promote_round()
    base = timed(baseline_copy)
    promo = timed(promote_round)

    with CaptureQueriesContext(connection) as big:
        archive(promote_once(source))
    small_agent = make_agent(org, "Small agent")
    fill(small_agent, max(10, N // 100))
    with CaptureQueriesContext(connection) as small:
        archive(promote_once(small_agent))

    print(f"components: {rows}")
    print(f"promote: {promo * 1000:.1f} ms; baseline INSERT ... SELECT: {base * 1000:.1f} ms")
    print(f"promote ratio: {promo / base:.2f} (goal <= 2)")
    print(
        f"promote queries: {len(big.captured_queries)} at {rows} components, "
        f"{len(small.captured_queries)} at {max(10, N // 100) + 1} components"
    )

    # --- pull preview with 10 % changed vs. selecting (uid, hash) of both sides -------
    target = promote_once(source)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE agents_component SET content_hash = md5(random()::text) || md5(random()::text)
            WHERE id IN (SELECT id FROM agents_component WHERE agent_id = %s ORDER BY id LIMIT %s)
            """,
            [source.pk, rows // 10],
        )
    preview = pull_preview(access=access, agent=target)

    def baseline_select():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT agent_id, uid, content_hash FROM agents_component WHERE agent_id IN (%s, %s)",
                [source.pk, target.pk],
            )
            cursor.fetchall()

    baseline_select()
    select_time = timed(baseline_select)
    preview_time = timed(lambda: pull_preview(access=access, agent=target))
    with CaptureQueriesContext(connection) as preview_queries:
        pull_preview(access=access, agent=target)
    print(
        f"pull preview: {preview_time * 1000:.1f} ms; "
        f"baseline select (uid, hash) x2: {select_time * 1000:.1f} ms"
    )
    print(f"preview ratio: {preview_time / select_time:.2f} (goal <= 2)")
    print(f"preview changes: {preview['counts']}; preview queries: {len(preview_queries.captured_queries)}")


if __name__ == "__main__":
    main()
