"""Promotion on PostgreSQL with a real worker: races, and a worker killed mid-clone."""

import os
import threading
import time

import httpx
import pytest
from django.db import connection

from accounts.models import Stage
from agents.models import Agent, Component
from lifecycle.operations import Operation, operation_live_progress
from rollouts.services.promotion import agent_promote
from tests.factories import PASSWORD, make_agent, make_world, owner_access
from tests.processes import wait_for

pytestmark = pytest.mark.django_db(transaction=True)
KILL_LOOPS = int(os.environ.get("LIFECYCLE_KILL_LOOPS", "1"))
KILL_COMPONENTS = int(os.environ.get("LIFECYCLE_KILL_COMPONENTS", "20000"))
RACERS = int(os.environ.get("LIFECYCLE_PROMOTE_RACERS", "20"))


def fill_agent(agent, count: int, body_bytes: int = 2000) -> None:
    """`count` knowledge components of about 2 KB each, written by PostgreSQL itself."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO agents_component
                (org_id, agent_id, uid, kind, name, spec, content_hash, synced_hash, needs_review,
                 created_at, updated_at)
            SELECT %s, %s, gen_random_uuid(), 'knowledge', 'doc-' || n,
                   jsonb_build_object('title', 'Doc ' || n, 'body', repeat(md5(n::text), %s)),
                   md5(n::text) || md5('x' || n::text), '', false, now(), now()
            FROM generate_series(1, %s) AS n
            """,
            [agent.org_id, agent.pk, max(1, body_bytes // 32), count],
        )


def clones(org, stage_slug="testing"):
    return Agent.objects.for_org(org).filter(stage__slug=stage_slug)


def test_twenty_simultaneous_promotions_make_one_clone(asgi_server, worker_factory):
    world = make_world()
    agent = make_agent(world.acme)
    fill_agent(agent, 50)
    worker_factory()
    # Every racer holds a token first, so the race is only the promotion itself.
    tokens = []
    with httpx.Client(base_url=asgi_server, timeout=30) as http:
        for _ in range(RACERS):
            issued = http.post(
                "/api/v1/auth/token/", json={"email": "tester@acme.test", "password": PASSWORD}
            )
            tokens.append(issued.json()["token"])
    barrier = threading.Barrier(RACERS)
    statuses: list[int] = []
    lock = threading.Lock()

    def racer(token):
        with httpx.Client(base_url=asgi_server, timeout=60) as http:
            barrier.wait()
            response = http.post(
                f"/api/v1/orgs/acme/agents/{agent.pk}/promote/",
                json={"confirm": "accept", "changelog": "Race", "acknowledge_editors": True},
                headers={"Authorization": f"Token {token}"},
            )
            with lock:
                statuses.append(response.status_code)

    threads = [threading.Thread(target=racer, args=(token,)) for token in tokens]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [202] + [409] * (RACERS - 1), statuses
    wait_for(
        lambda: clones(world.acme).exists() and Operation.objects.for_org(world.acme).get().is_finished,
        60,
        0.1,
        "the clone",
    )
    assert clones(world.acme).count() == 1
    clone = clones(world.acme).get()
    assert Component.objects.for_org(world.acme).filter(agent=clone).count() == 51
    assert Operation.objects.for_org(world.acme).get().status == "succeeded"


def _cloning_now() -> bool:
    """Is a worker inside the clone's INSERT … SELECT right now?"""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT count(*) FROM pg_stat_activity
            WHERE state = 'active' AND pid <> pg_backend_pid()
              AND query LIKE %s
            """,
            ["%INSERT INTO agents_component%SELECT%"],
        )
        return cursor.fetchone()[0] > 0


@pytest.mark.parametrize("loop", range(KILL_LOOPS))
def test_sigkill_mid_clone_never_leaves_a_partial_clone(worker_factory, loop):
    world = make_world()
    access = owner_access(world.acme)
    agent = make_agent(world.acme)
    fill_agent(agent, KILL_COMPONENTS)
    expected = Component.objects.for_org(world.acme).filter(agent=agent).count()
    worker = worker_factory("doomed")
    operation = agent_promote(access=access, agent=agent, confirm="accept")

    wait_for(_cloning_now, 120, 0.005, "the clone's INSERT … SELECT")
    op = Operation.objects.for_org(world.acme).get(pk=operation.pk)
    # Progress is written outside the clone's transaction: it shows while the clone runs.
    assert op.status == "running" and 0 < operation_live_progress(op) < 100
    worker.kill()

    # Nothing of the interrupted clone is visible, not even the agent row.
    assert not clones(world.acme).exists()
    testing = Stage.objects.for_org(world.acme).get(slug="testing")
    assert not Component.objects.for_org(world.acme).filter(agent__stage=testing).exists()

    started = time.monotonic()
    worker_factory("rescuer")
    wait_for(
        lambda: Operation.objects.for_org(world.acme).get(pk=operation.pk).is_finished, 180, 0.2, "redelivery"
    )
    op = Operation.objects.for_org(world.acme).get(pk=operation.pk)
    assert op.status == "succeeded", op.error
    assert op.attempts == 2
    assert clones(world.acme).count() == 1
    clone = clones(world.acme).get()
    assert Component.objects.for_org(world.acme).filter(agent=clone).count() == expected
    assert clone.version == 1
    print(f"loop {loop}: {expected} components, finished {time.monotonic() - started:.1f}s after the kill")
