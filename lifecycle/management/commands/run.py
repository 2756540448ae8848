"""`make run`: web (ASGI), Celery worker and beat together; Ctrl-C stops all of them.

The children stay in our process group, so Ctrl-C (or a SIGTERM to the group) reaches
them directly; we also forward SIGINT/SIGTERM to each, and SIGKILL whatever is left of
them, and of anything they started, after a grace period. The web server used to run in
a session of its own: a process stuck in a long computation survived `make run` ending
and kept spinning at full CPU.
"""

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

# The embedded setup's own tools and webhooks are often local test servers (README,
# "Outbound"). Only here, never in production settings.
EMBEDDED_OUTBOUND_ALLOWED_HOSTS = "127.0.0.1,localhost,::1"


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (Linux /proc; elsewhere, none beyond the child itself)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*/stat"):
        try:
            stat = entry.read_text()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: the fields follow the last ")".
        fields = stat.rsplit(")", 1)[-1].split()
        children.setdefault(int(fields[1]), []).append(int(entry.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _signal_all(pids, sig) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


class Command(BaseCommand):
    help = "Serve the app with a worker and beat (the embedded setup)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", default=os.environ.get("PORT", "8000"))
        parser.add_argument(
            "--grace",
            type=float,
            default=float(os.environ.get("RUN_STOP_GRACE", "5")),
            help="seconds to wait for a clean stop before SIGKILL",
        )

    def handle(self, *args, host, port, grace, **options):
        bin_dir = os.path.dirname(sys.executable)
        web = [
            os.path.join(bin_dir, "uvicorn"),
            "lifecycle.asgi:application",
            "--host",
            host,
            "--port",
            str(port),
            "--ws-max-size",
            str(settings.WS_SERVER_MAX_BYTES),
            "--forwarded-allow-ips",
            settings.FORWARDED_ALLOW_IPS,
            "--no-access-log" if os.environ.get("ACCESS_LOG", "1") == "0" else "--access-log",
        ]
        worker = [
            os.path.join(bin_dir, "celery"),
            "-A",
            "lifecycle",
            "worker",
            "--beat",
            "--pool=solo",
            "--loglevel=INFO",
            "--schedule",
            settings.CELERY_BEAT_SCHEDULE_FILENAME,
        ]
        env = dict(os.environ)
        env.setdefault("LIFECYCLE_OUTBOUND_ALLOWED_HOSTS", EMBEDDED_OUTBOUND_ALLOWED_HOSTS)
        stopping = False

        def stop(*_):
            # Only note it: _stop() below sends SIGTERM to each child (a signal sent to this
            # process alone reaches them that way), and a second SIGINT would force uvicorn.
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        # Same process group as ours (no new session): a signal to the group reaches all.
        children = [subprocess.Popen(cmd, env=env) for cmd in (web, worker)]  # noqa: S603
        self.stdout.write(f"Lifecycle is at http://{host}:{port}/  (Ctrl-C stops web, worker and beat)")
        try:
            while not stopping and all(child.poll() is None for child in children):
                time.sleep(0.3)
        finally:
            self._stop(children, grace)
        failed = [c for c in children if c.returncode not in (0, -signal.SIGTERM, None) and not stopping]
        if failed:
            raise SystemExit(1)

    def _stop(self, children: list[subprocess.Popen], grace: float) -> None:
        """SIGTERM, then after `grace` seconds SIGKILL every child and their descendants."""
        tree = {c.pid: descendants(c.pid) for c in children}
        _signal_all([c.pid for c in children if c.poll() is None], signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(c.poll() is None for c in children):
            time.sleep(0.1)
        # Whatever is left is stuck (or its parent exited without reaping its own children).
        for child in children:
            left = [child.pid] if child.poll() is None else []
            left += descendants(child.pid) if child.poll() is None else []
            left += [pid for pid in tree[child.pid] if _alive(pid)]
            _signal_all(left, signal.SIGKILL)  # works on a stopped (SIGSTOP) process too
        for child in children:
            try:
                child.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.stderr.write(f"process {child.pid} did not end")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
