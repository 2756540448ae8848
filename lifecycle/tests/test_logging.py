"""Secrets in URLs (`?token=`) never reach a log line: uvicorn's access log, its
WebSocket handshake lines, or the app's own logs."""

import io
import logging

import pytest

from lifecycle.logfilters import redact_query_secrets

SECRET = "lc_SECRETVALUE123"


@pytest.fixture
def captured():
    """Point every configured handler of these loggers at one buffer, for the test."""
    buffer = io.StringIO()
    handlers = [
        handler
        for name in ("uvicorn", "uvicorn.access", "")
        for handler in logging.getLogger(name).handlers
        if isinstance(handler, logging.StreamHandler)
    ]
    assert handlers, "settings.LOGGING configures these loggers"
    previous = [handler.stream for handler in handlers]
    for handler in handlers:
        handler.stream = buffer
    yield buffer
    for handler, stream in zip(handlers, previous, strict=True):
        handler.stream = stream


def test_the_access_log_redacts_a_token(captured):
    # Exactly how uvicorn's HTTP protocols log a request.
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", f"/api/v1/orgs/?token={SECRET}&page=2", "1.1", 200
    )
    line = captured.getvalue()
    assert SECRET not in line
    assert "/api/v1/orgs/?token=[redacted]&page=2" in line and "200" in line


def test_a_websocket_handshake_line_redacts_a_token(captured):
    # uvicorn logs handshakes on uvicorn.error, which propagates to the `uvicorn` handler.
    logging.getLogger("uvicorn.error").info(
        '%s - "WebSocket %s" [accepted]',
        "127.0.0.1:5000",
        f"/ws/orgs/acme/agents/x/conversation/?token={SECRET}",
    )
    assert SECRET not in captured.getvalue() and "?token=[redacted]" in captured.getvalue()


def test_the_apps_own_logs_redact_a_token(captured):
    logging.getLogger("lifecycle.anything").warning("failed on %s", f"/x/?a=1&TOKEN={SECRET}")
    assert SECRET not in captured.getvalue() and "TOKEN=[redacted]" in captured.getvalue()


def test_redaction_keeps_everything_else():
    assert (
        redact_query_secrets("/a/?token=abc&b=2;key=k#frag") == "/a/?token=[redacted]&b=2;key=[redacted]#frag"
    )
    assert redact_query_secrets("/tokens/?name=token=1") == "/tokens/?name=token=1"
