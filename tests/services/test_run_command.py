"""`manage.py run` (what `make run` starts): its defaults, and stopping it ends everything."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

import httpx

from lifecycle.management.commands.run import descendants
from tests.processes import free_port, wait_for
from tests.services.conftest import LOG_DIR, ROOT


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[-1].split()[0] != "Z"  # a zombie has ended
    except FileNotFoundError:
        return False


def _cmdline(pid: int) -> list[str]:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return [part.decode() for part in f.read().split(b"\0") if part]


def _environ(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/environ", "rb") as f:
        pairs = [
            part.decode(errors="replace").split("=", 1) for part in f.read().split(b"\0") if b"=" in part
        ]
    return dict(pairs)


def test_run_allows_local_outbound_and_stops_everything_even_when_stuck(tmp_path):
    # The embedded defaults, as `make run` has them: no DATABASE_URL, no REDIS_URL, and
    # none of the test settings (which allow 127.0.0.1 themselves).
    env = {
        key: value
        for key, value in os.environ.items()
        if key
        not in {
            "DATABASE_URL",
            "REDIS_URL",
            "CACHE_URL",
            "LIFECYCLE_OUTBOUND_ALLOWED_HOSTS",
            "FORWARDED_ALLOW_IPS",
        }
    }
    env.update(
        DJANGO_SETTINGS_MODULE="lifecycle.settings",
        LIFECYCLE_VAR_DIR=str(tmp_path),
        PYTHONUNBUFFERED="1",
        RUN_STOP_GRACE="3",
    )
    port = free_port()
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log = open(LOG_DIR / f"run-command-{port}.log", "ab")  # noqa: SIM115
    # Its own session, like a terminal's job: the test signals the whole group.
    run = subprocess.Popen(
        [sys.executable, "manage.py", "run", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:

        def up():
            try:
                return httpx.get(f"http://127.0.0.1:{port}/api/v1/schema/", timeout=1).status_code < 600
            except httpx.HTTPError:
                return run.poll() is not None

        wait_for(up, 90, 0.3, "the web server of `manage.py run`")
        assert run.poll() is None
        pids = descendants(run.pid)
        web = [pid for pid in pids if any("uvicorn" in part for part in _cmdline(pid)[:2])]
        assert web, [(pid, _cmdline(pid)) for pid in pids]
        # Every process started stays in the command's process group.
        assert all(os.getpgid(pid) == run.pid for pid in pids)

        # Outbound calls to local servers are allowed in the embedded setup.
        allowed = _environ(web[0])["LIFECYCLE_OUTBOUND_ALLOWED_HOSTS"].split(",")
        assert {"127.0.0.1", "localhost"} <= set(allowed)
        argv = _cmdline(web[0])
        assert argv[argv.index("--forwarded-allow-ips") + 1] == "127.0.0.1"

        # A web process stuck (here: stopped) cannot finish a graceful shutdown.
        os.kill(web[0], signal.SIGSTOP)
        started = time.monotonic()
        os.killpg(run.pid, signal.SIGTERM)
        wait_for(lambda: not any(_alive(pid) for pid in [run.pid, *pids]), 20, 0.2, "every process to end")
        assert time.monotonic() - started < 15
    finally:
        for pid in [run.pid, *descendants(run.pid)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        run.wait(timeout=10)
        log.close()
