"""The services tier: real PostgreSQL and Redis, a real Celery worker process and a
real ASGI server process, started here. Run it with `make test-services`.

Nothing here is skipped: if a service is missing the fixtures fail loudly.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import redis
from django.conf import settings
from django.db import connection

from lifecycle.celery import app as celery_app
from tests.processes import free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
LOG_DIR = Path(os.environ.get("LIFECYCLE_TEST_LOGS", ROOT / "var" / "test-logs"))


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/services/" in str(item.fspath):
            item.add_marker(pytest.mark.services)


@pytest.fixture(scope="session")
def services_env(django_db_setup, django_db_blocker) -> dict:
    """Environment for child processes: the test database, Redis, fast redelivery."""
    with django_db_blocker.unblock():
        assert connection.vendor == "postgresql", (
            "the services tier needs DATABASE_URL pointing at PostgreSQL (make test-services)"
        )
        db = connection.settings_dict
    assert settings.REDIS_URL, "the services tier needs REDIS_URL (make test-services)"
    redis.Redis.from_url(settings.REDIS_URL).ping()
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="lifecycle.settings_test",
        DATABASE_URL=(
            f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST'] or '127.0.0.1'}"
            f":{db['PORT'] or 5432}/{db['NAME']}"
        ),
        CELERY_TASK_ALWAYS_EAGER="0",
        # A SIGKILLed worker's message comes back after this; keep it short in tests.
        CELERY_VISIBILITY_TIMEOUT=os.environ.get("CELERY_VISIBILITY_TIMEOUT", "6"),
        CELERY_RESTORE_INTERVAL="1",
        # A lease shorter than the visibility timeout, so a dead worker's task is taken
        # over as soon as it is redelivered (the lease tests set their own).
        OPERATION_LEASE_SECONDS=os.environ.get("OPERATION_LEASE_SECONDS", "3"),
        PYTHONUNBUFFERED="1",
    )
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    return env


@pytest.fixture(scope="session")
def broker(services_env):
    """Send tasks to the real broker (the fast tier runs them in-process)."""
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.flushdb()  # a test database's own broker: nothing of a previous run survives
    celery_app.conf.task_always_eager = False
    yield client
    celery_app.conf.task_always_eager = True


class Proc:
    """A child process in its own process group, with its output in a log file."""

    def __init__(self, name: str, argv: list[str], env: dict):
        self.name, self.argv, self.env = name, argv, env
        self.process: subprocess.Popen | None = None
        self.log_path = LOG_DIR / f"{name}.log"

    def start(self) -> Proc:
        log = open(self.log_path, "ab")  # noqa: SIM115 (kept open for the child's lifetime)
        self.process = subprocess.Popen(
            self.argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        return self

    def kill(self, sig=signal.SIGKILL) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except FileNotFoundError:
            return ""


def worker_proc(env: dict, name: str = "worker") -> Proc:
    return Proc(
        name,
        [
            str(BIN / "celery"),
            "-A",
            "lifecycle",
            "worker",
            "--pool=prefork",
            "--concurrency=2",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel=INFO",
            # Test-only operation handlers (slow work that counts its runs).
            "--include=tests.services.handlers",
        ],
        env,
    )


@pytest.fixture
def worker_factory(services_env, broker):
    """Start (and always stop) real worker processes; tests may SIGKILL them."""
    started: list[Proc] = []

    def start(name: str = "worker", **env) -> Proc:
        """`env` overrides settings for this worker only, e.g. OPERATION_LEASE_SECONDS="10"."""
        proc = worker_proc({**services_env, **env}, f"{name}-{len(started)}").start()
        started.append(proc)
        wait_for(
            lambda: "ready." in proc.log_tail(200) or proc.process.poll() is not None, 60, 0.2, "worker ready"
        )
        assert proc.process.poll() is None, proc.log_tail()
        return proc

    yield start
    for proc in started:
        proc.stop()


def start_asgi(env: dict) -> tuple[Proc, str]:
    """A real uvicorn process serving the app against the test database and Redis."""
    port = free_port()
    proc = Proc(
        "asgi",
        [
            str(BIN / "uvicorn"),
            "lifecycle.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--ws-max-size",
            str(settings.WS_SERVER_MAX_BYTES),
            "--ws-per-message-deflate",
            "false",
            "--no-access-log",
        ],
        env,
    ).start()
    base = f"http://127.0.0.1:{port}"

    def up():
        try:
            return httpx.get(base + "/login/", timeout=1).status_code == 200
        except httpx.HTTPError:
            return proc.process.poll() is not None

    wait_for(up, 60, 0.2, "ASGI server")
    assert proc.process.poll() is None, proc.log_tail()
    return proc, base


@pytest.fixture(scope="session")
def asgi_server(services_env, broker):
    proc, base = start_asgi(services_env)
    yield base
    proc.stop()


@pytest.fixture(autouse=True)
def _server_writes_settle(request):
    """Before a transactional test's flush, wait until the server and worker are quiet.

    A test may end the moment it has its answer while the ASGI server still writes the
    conversation's last turns (or a worker finishes a task): the flush's TRUNCATE then
    deadlocks with those writes, and the next test starts on a database that was not
    emptied. Requesting the database helper here makes this teardown run before its flush.
    """
    if request.node.get_closest_marker("django_db") is None:
        yield
        return
    request.getfixturevalue("_django_db_helper")
    yield
    busy_sql = (
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid() AND state IN ('active', 'idle in transaction')"
    )
    deadline, quiet = time.monotonic() + 15, 0
    while quiet < 2 and time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(busy_sql)
            busy = cursor.fetchone()[0]
        quiet = quiet + 1 if busy == 0 else 0
        time.sleep(0.2)
