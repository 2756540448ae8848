"""An ASGI middleware in front of Django's HTTP app that caps request bodies while they
are read, and gives a chunked body its length.

Django's ASGI handler reads the whole body before any Django middleware runs, and
without a Content-Length neither Django's upload limit nor ApiBodyLimitMiddleware can
see the size: a 500 MB chunked body was read in full, then refused. DRF treats a request
without Content-Length as having no body at all, so a chunked PATCH answered 200 and
changed nothing. Here a declared length over the limit is refused before reading, a
chunked body is read up to the limit (413 as soon as it passes), and what was read is
handed on with its Content-Length set.
"""

from __future__ import annotations

import json

from .errors import envelope
from .middleware import body_limit


class BodyLimitMiddleware:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        limit = body_limit(path)
        headers = scope.get("headers") or []
        declared = [value for name, value in headers if name.lower() == b"content-length"]
        if declared:
            try:
                length = int(declared[0])
            except ValueError:
                length = -1
            if length < 0 or length > limit:
                return await _refuse(send, path, limit, status=413 if length > limit else 400)
            return await self.app(scope, receive, send)
        if not any(name.lower() == b"transfer-encoding" for name, _ in headers):
            return await self.app(scope, receive, send)  # neither length nor chunks: no body
        # Chunked, whatever the method: Django would read a chunked GET's body too.

        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None  # the client went away; there is no one to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return await _refuse(send, path, limit)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        scope = {
            **scope,
            "headers": [
                *(h for h in headers if h[0].lower() != b"transfer-encoding"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
        delivered = False

        async def replay():
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            # Afterwards Django only listens for the client going away.
            return await receive()

        return await self.app(scope, replay, send)


async def _refuse(send, path: str, limit: int, status: int = 413) -> None:
    if status == 413:
        code, message = "too_large", f"Request body is larger than {limit} bytes."
    else:
        code, message = "invalid", "Content-Length is not a valid length."
    if path.startswith("/api/"):
        body, content_type = json.dumps(envelope(code, message)).encode(), b"application/json"
    else:
        body, content_type = message.encode(), b"text/plain; charset=utf-8"
    await send(
        {
            "type": "http.response.start",
            "status": status,
            # The rest of the body is never read: the connection cannot be reused.
            "headers": [(b"content-type", content_type), (b"connection", b"close")],
        }
    )
    await send({"type": "http.response.body", "body": body})
