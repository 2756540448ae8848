"""`make run`: web (ASGI), Celery worker and beat together; Ctrl-C stops all of them."""

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Serve the app with a worker and beat (the embedded setup)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", default=os.environ.get("PORT", "8000"))

    def handle(self, *args, host, port, **options):
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
            # Console frames are small JSON; compressing each one cost more latency than
            # it saved bytes (bench/ws.py).
            "--ws-per-message-deflate",
            "false",
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
        children = [subprocess.Popen(cmd, start_new_session=True) for cmd in (web, worker)]  # noqa: S603
        self.stdout.write(f"Lifecycle is at http://{host}:{port}/  (Ctrl-C stops web, worker and beat)")
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            while not stopping and all(child.poll() is None for child in children):
                time.sleep(0.3)
        finally:
            for child in children:
                if child.poll() is None:
                    os.killpg(child.pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            for child in children:
                try:
                    child.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    os.killpg(child.pid, signal.SIGKILL)
        failed = [c for c in children if c.returncode not in (0, -signal.SIGTERM, None) and not stopping]
        if failed:
            raise SystemExit(1)
