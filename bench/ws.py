"""Console latency: user_message → final agent_response, 200 concurrent sockets, against an
echo consumer in the same server (bench/asgi.py).

    .venv/bin/python bench/ws.py         # BENCH_SOCKETS=200 BENCH_MESSAGES=5

The builtin engine answers the demo agent; words are streamed without the console's
cosmetic pause (CONSOLE_STREAM_DELAY_MS=0), so the ratio is engine + protocol overhead.
Printed, not asserted. Goal: p99 ratio <= 2.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time

import websockets
from common import Server, percentile, setup_django

SOCKETS = int(os.environ.get("BENCH_SOCKETS", "200"))
MESSAGES = int(os.environ.get("BENCH_MESSAGES", "5"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
SETTLE = 3.0
QUESTIONS = [
    "hello",
    "Where is order 31337?",
    "How many days do I have to return an item?",
    "talk to a person please",
]


async def client(url: str, n: int, initiate: bool, ready: asyncio.Barrier) -> list[float]:
    latencies = []
    async with websockets.connect(url, max_size=2**20, open_timeout=120) as socket:
        if initiate:
            await socket.send(json.dumps({"type": "conversation_initiation_client_data"}))
            while json.loads(await socket.recv())["type"] != "agent_response":
                pass
        # Everyone connected and greeted first: what is measured is talking, not connecting.
        await ready.wait()
        # Spread over 50 ms, as people do: 200 sockets in lockstep would measure the burst
        # (the echo, answering at once, would stay in lockstep round after round).
        await asyncio.sleep((n * 7 % 50) / 1000)
        for i in range(MESSAGES):
            started = time.perf_counter()
            await socket.send(
                json.dumps({"type": "user_message", "text": QUESTIONS[(n + i) % len(QUESTIONS)]})
            )
            while json.loads(await socket.recv())["type"] != "agent_response":
                pass
            latencies.append((time.perf_counter() - started) * 1000)
    return latencies


async def run(url: str, initiate: bool) -> list[float]:
    ready = asyncio.Barrier(SOCKETS)
    results = await asyncio.gather(*(client(url, n, initiate, ready) for n in range(SOCKETS)))
    return [latency for result in results for latency in result]


def main() -> None:
    setup_django("lifecycle_bench_ws")
    from accounts.demo import seed_demo_org
    from accounts.models import User
    from accounts.services.auth import token_create
    from agents.demo import seed_demo_agent

    org, _ = seed_demo_org()
    agent = seed_demo_agent(org)
    _, token = token_create(user=User.objects.get(email="tester@acme.test"), name="bench")
    server = Server({"CONSOLE_STREAM_DELAY_MS": "0", "WS_PING_SECONDS": "3600"})
    try:
        ws = server.base.replace("http://", "ws://")
        console = f"{ws}/ws/orgs/{org.slug}/agents/{agent.pk}/conversation/?token={token}"
        echo = f"{ws}/ws/bench/echo/"
        asyncio.run(run(echo, False))  # warm up both
        asyncio.run(run(console, True))
        rounds = {"echo": [], "console": []}
        for _ in range(ROUNDS):  # alternate, so both see the same machine
            for kind, url, initiate in (("echo", echo, False), ("console", console, True)):
                rounds[kind].append(asyncio.run(run(url, initiate)))
                time.sleep(SETTLE)  # let the last round's closing writes finish first
    finally:
        server.stop()

    def median_of(kind, p):
        return statistics.median(percentile(latencies, p) for latencies in rounds[kind])

    e50, e99 = median_of("echo", 50), median_of("echo", 99)
    c50, c99 = median_of("console", 50), median_of("console", 99)
    print(
        f"sockets: {SOCKETS}, messages per socket: {MESSAGES}, rounds: {ROUNDS}"
        " (medians of each round's percentiles)"
    )
    print(f"echo consumer: p50 {e50:.1f} ms, p99 {e99:.1f} ms")
    print(f"console (builtin engine): p50 {c50:.1f} ms, p99 {c99:.1f} ms")
    print(f"p50 ratio: {c50 / e50:.2f}")
    print(f"p99 ratio: {c99 / e99:.2f} (goal <= 2)")


if __name__ == "__main__":
    main()
