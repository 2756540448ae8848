"""Real HTTP servers on 127.0.0.1 for tests of outbound calls (webhooks, model endpoints)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Recorder:
    """A server whose behaviour each test sets, and which remembers what it was sent."""

    def __init__(self, handler):
        self.requests: list[dict] = []
        self.handle = handler  # (recorder, request dict) -> (status, body, delay seconds)
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                request = {
                    "path": self.path,
                    "headers": dict(self.headers),
                    "body": json.loads(raw or b"null"),
                    "raw": raw,
                }
                recorder.requests.append(request)
                status, body, delay = recorder.handle(recorder, request)
                if delay:
                    time.sleep(delay)
                if callable(body):  # a streaming body: write chunks as they come
                    self.send_response(status)
                    self.send_header("Content-Type", "text/event-stream")
                    self.end_headers()
                    for chunk in body(request):
                        self.wfile.write(chunk.encode())
                        self.wfile.flush()
                    return
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
