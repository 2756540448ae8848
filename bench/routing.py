"""Sticky routing's cost: gateway throughput during a canary against no release, same run.

    .venv/bin/python bench/routing.py        # BENCH_CONCURRENCY=16 BENCH_MESSAGES=1600

Two kinds of request, each measured with and without a canary of the demo agent (a 50 %
split between two saved versions, so both versions are compiled and served):
- conversation starts: the request that routes (a cached split checked against Redis,
  then the murmur3 bucket), and
- messages: a conversation keeps its version, so a message never routes.
Rounds alternate (canary started, measured, rolled back, measured), so both conditions
see the same machine, and each change exercises the routing cache's invalidation. The
key's request budget is lifted. Printed, not asserted. Goal: ratio >= 0.9 for both.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time

from common import Server, setup_django
from gateway import CONCURRENCY, MESSAGES, Connection, message_requests

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))


async def drive(port: int, requests: list[tuple[str, str, dict, bytes]]) -> float:
    """gateway.drive, accepting 201 (a started conversation) as well; requests per second."""
    queue: asyncio.Queue = asyncio.Queue()
    for item in requests:
        queue.put_nowait(item)
    connections = [Connection(port) for _ in range(CONCURRENCY)]
    await asyncio.gather(*(c.open() for c in connections))

    async def worker(connection: Connection) -> None:
        while not queue.empty():
            method, path, headers, body = queue.get_nowait()
            status, answer = await connection.request(method, path, headers, body)
            if status not in (200, 201):
                raise RuntimeError(f"{path} answered {status}: {answer[:300]!r}")

    started = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in connections))
    elapsed = time.perf_counter() - started
    for connection in connections:
        connection.close()
    return len(requests) / elapsed


def start_requests(base: str, key: str, round_: int) -> list[tuple[str, str, dict, bytes]]:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    return [
        ("POST", base, headers, json.dumps({"user": f"visitor-{round_}-{n}"}).encode())
        for n in range(MESSAGES)
    ]


async def started_versions(port: int, base: str, key: str, count: int) -> dict[int, int]:
    """How many of `count` new conversations each version got (the split is real)."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    connection = Connection(port)
    await connection.open()
    seen: dict[int, int] = {}
    for n in range(count):
        _, body = await connection.request("POST", base, headers, json.dumps({"user": f"check-{n}"}).encode())
        version = json.loads(body)["version"]
        seen[version] = seen.get(version, 0) + 1
    connection.close()
    return seen


def main() -> None:
    setup_django("lifecycle_bench_routing")
    from accounts.demo import seed_demo_org
    from accounts.models import Stage, User
    from agents.demo import seed_demo_agent
    from agents.services.versions import version_save
    from lifecycle.access import access_for
    from rollouts.models import Release
    from rollouts.policy import stage_policy_update
    from rollouts.services.keys import stage_key_create
    from rollouts.services.release import release_create
    from rollouts.services.release_progress import release_rollback

    org, _ = seed_demo_org()
    agent = seed_demo_agent(org)
    stage = Stage.objects.for_org(org).get(slug="development")
    admin = access_for(User.objects.get(email="admin@acme.test"), org)
    # A second version that waits for a release, to be the canary's candidate.
    stage_policy_update(access=admin, stage=stage, document={"releases": {"required": True}})
    candidate = version_save(access=admin, agent=agent, changelog="the canary").number
    _, key = stage_key_create(access=admin, stage=stage, name="bench")
    base = f"/api/v1/run/{org.slug}/{agent.lineage.slug}/development/conversations/"

    def canary_start():
        agent.refresh_from_db()
        return release_create(
            access=admin,
            agent=agent,
            version=candidate,
            changelog="bench canary",
            strategy="canary",
            steps=[{"weight": 50, "hold": "24h"}, {"weight": 100}],
            analysis={"interval": "24h"},
        )

    server = Server({"GATEWAY_RATE_PER_MINUTE": str(10**9)})
    rates = {k: [] for k in ("start", "start_canary", "message", "message_canary")}
    split = {}
    try:
        asyncio.run(drive(server.port, start_requests(base, key, -1)[:200]))  # warm up
        for round_ in range(ROUNDS):
            rates["start"].append(asyncio.run(drive(server.port, start_requests(base, key, round_))))
            rates["message"].append(asyncio.run(drive(server.port, message_requests(server.port, base, key))))
            release = canary_start()
            split = asyncio.run(started_versions(server.port, base, key, 200))
            rates["start_canary"].append(
                asyncio.run(drive(server.port, start_requests(base, key, 100 + round_)))
            )
            rates["message_canary"].append(
                asyncio.run(drive(server.port, message_requests(server.port, base, key)))
            )
            release_rollback(
                access=admin, release=Release.objects.for_org(org).get(pk=release.pk), reason="bench"
            )
    finally:
        server.stop()

    median = {k: statistics.median(v) for k, v in rates.items()}
    print(f"concurrency: {CONCURRENCY}, requests per round: {MESSAGES}, rounds: {ROUNDS} (medians)")
    print(f"new conversations during the canary, by version (of 200): {split}")
    print(f"conversation starts, no release: {median['start']:.0f}/s; canary: {median['start_canary']:.0f}/s")
    print(f"messages, no release: {median['message']:.0f}/s; canary: {median['message_canary']:.0f}/s")
    print(f"ratio, starts: {median['start_canary'] / median['start']:.2f} (goal >= 0.9)")
    print(f"ratio, messages: {median['message_canary'] / median['message']:.2f} (goal >= 0.9)")


if __name__ == "__main__":
    main()
