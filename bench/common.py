"""Shared by the benchmarks: a fresh PostgreSQL database and a real uvicorn process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
SERVER = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")


def database_url(name: str) -> str:
    return SERVER.rsplit("/", 1)[0] + "/" + name


def recreate_database(name: str) -> None:
    import psycopg

    with psycopg.connect(SERVER.replace("postgres://", "postgresql://"), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")


# Benchmarks run as production does (DEBUG off), with fixed throwaway keys shared by the
# benchmark process (which writes the data) and the server (which reads it).
PRODUCTION_LIKE = {
    "DEBUG": "0",
    "SECRET_KEY": "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
    "LIFECYCLE_ENCRYPTION_KEYS": "YmVuY2gtb25seS1lbmNyeXB0aW9uLWtleS0wMTIzNDU=",
    "LIFECYCLE_HASH_KEY": "bench-only-hash-key",
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    "SECURE_SSL_REDIRECT": "0",
    # As deployed: Redis for the cache, the broker and the channel layer.
    "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13"),
}


def setup_django(name: str) -> None:
    os.environ.update(PRODUCTION_LIKE)
    os.environ["DATABASE_URL"] = database_url(name)
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    os.environ.setdefault("LIFECYCLE_VAR_DIR", f"/tmp/lifecycle-{name}")
    os.environ.setdefault("LIFECYCLE_OUTBOUND_ALLOWED_HOSTS", "127.0.0.1")
    sys.path.insert(0, str(ROOT))
    recreate_database(name)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """uvicorn serving bench.asgi (the app plus the baselines) in one process."""

    def __init__(self, env: dict | None = None):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        child_env = {**os.environ, "ACCESS_LOG": "0", "LOG_LEVEL": "WARNING", **(env or {})}
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "uvicorn"),
                "bench.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--no-access-log",
                "--log-level",
                "warning",
                "--ws-max-size",
                str(1024 * 1024),
                # As deployed (run.py, Dockerfile, compose): no per-message deflate.
                "--ws-per-message-deflate",
                "false",
                *os.environ.get("BENCH_UVICORN_ARGS", "").split(),
            ],
            cwd=ROOT,
            env=child_env,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                httpx.get(self.base + "/api/v1/ready/", timeout=1)  # any answer will do
                return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError("the benchmark server did not start")

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(timeout=20)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]
