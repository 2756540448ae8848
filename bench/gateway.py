"""Gateway throughput: messages/s through the live-traffic gateway with the builtin engine,
against a bare DRF view doing one indexed database read, in the same ASGI server.

    .venv/bin/python bench/gateway.py        # BENCH_CONCURRENCY=16 BENCH_MESSAGES=1600

Each message is a POST to /api/v1/run/{org}/{lineage}/{stage}/conversations/{id}/messages/
with a stage key: key check, request budget, agent and conversation lookups, the engine,
and the turns written before the answer returns. Conversations are started before the
clock runs and each takes ten messages, as a short real one would. The client is a bare
keep-alive HTTP/1.1 loop, so what is compared is the server's work. The key's request
budget is lifted: this measures throughput, not the budget. Printed, not asserted.
Goal: ratio >= 0.5.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time

from common import Server, setup_django

CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "16"))
MESSAGES = int(os.environ.get("BENCH_MESSAGES", "1600"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
PER_CONVERSATION = 10
QUESTIONS = [
    "hello",
    "Where is order 31337?",
    "How many days do I have to return an item?",
    "What are your shipping options?",
]


class Connection:
    """One keep-alive HTTP/1.1 connection: raw bytes out, status and body back."""

    def __init__(self, port: int):
        self.port = port

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)

    async def request(self, method: str, path: str, headers: dict, body: bytes = b"") -> tuple[int, bytes]:
        lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


async def drive(port: int, requests: list[tuple[str, str, dict, bytes]]) -> float:
    """Send the requests over CONCURRENCY connections; requests per second."""
    queue: asyncio.Queue = asyncio.Queue()
    for item in requests:
        queue.put_nowait(item)
    connections = [Connection(port) for _ in range(CONCURRENCY)]
    await asyncio.gather(*(c.open() for c in connections))

    async def worker(connection: Connection) -> None:
        while not queue.empty():
            method, path, headers, body = queue.get_nowait()
            status, answer = await connection.request(method, path, headers, body)
            if status != 200:
                raise RuntimeError(f"{path} answered {status}: {answer[:300]!r}")

    started = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in connections))
    elapsed = time.perf_counter() - started
    for connection in connections:
        connection.close()
    return len(requests) / elapsed


def message_requests(port: int, base: str, key: str) -> list[tuple[str, str, dict, bytes]]:
    """MESSAGES messages over freshly started conversations, interleaved so that the
    concurrent workers talk to different conversations (as live traffic does)."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    async def start(count: int) -> list[str]:
        connection = Connection(port)
        await connection.open()
        ids = []
        for n in range(count):
            status, body = await connection.request(
                "POST", base, headers, json.dumps({"user": f"visitor-{n}"}).encode()
            )
            if status != 201:
                raise RuntimeError(f"starting a conversation answered {status}: {body[:300]!r}")
            ids.append(json.loads(body)["conversation"])
        connection.close()
        return ids

    ids = asyncio.run(start(-(-MESSAGES // PER_CONVERSATION)))
    return [
        (
            "POST",
            f"{base}{ids[n % len(ids)]}/messages/",
            headers,
            json.dumps({"text": QUESTIONS[n % len(QUESTIONS)]}).encode(),
        )
        for n in range(MESSAGES)
    ]


def main() -> None:
    setup_django("lifecycle_bench_gateway")
    from accounts.demo import seed_demo_org
    from accounts.models import Stage, User
    from agents.demo import seed_demo_agent
    from lifecycle.access import access_for
    from rollouts.services.keys import stage_key_create

    org, _ = seed_demo_org()
    agent = seed_demo_agent(org)
    stage = Stage.objects.for_org(org).get(slug="development")
    admin = access_for(User.objects.get(email="admin@acme.test"), org)
    _, key = stage_key_create(access=admin, stage=stage, name="bench")
    base = f"/api/v1/run/{org.slug}/{agent.lineage.slug}/development/conversations/"
    read = [("GET", f"/bench/read/{org.pk}/", {}, b"")] * MESSAGES

    server = Server({"GATEWAY_RATE_PER_MINUTE": str(10**9)})
    try:
        asyncio.run(drive(server.port, read[:200]))  # warm up both
        asyncio.run(drive(server.port, message_requests(server.port, base, key)[:200]))
        rates = {"read": [], "gateway": []}
        for _ in range(ROUNDS):  # alternate, so both see the same machine
            rates["read"].append(asyncio.run(drive(server.port, read)))
            rates["gateway"].append(asyncio.run(drive(server.port, message_requests(server.port, base, key))))
    finally:
        server.stop()

    baseline, gateway = statistics.median(rates["read"]), statistics.median(rates["gateway"])
    print(f"concurrency: {CONCURRENCY}, requests per round: {MESSAGES}, rounds: {ROUNDS} (medians)")
    print(f"bare DRF view, one indexed read: {baseline:.0f} requests/s")
    print(f"gateway, builtin engine: {gateway:.0f} messages/s")
    print(f"throughput ratio: {gateway / baseline:.2f} (goal >= 0.5)")


if __name__ == "__main__":
    main()
