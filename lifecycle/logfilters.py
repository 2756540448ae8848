"""Logging filters: secrets in URLs never reach a log line.

Clients of the console may authenticate with `?token=` (browsers cannot set headers on
a WebSocket), and uvicorn logs the full path with its query string: the access log for
HTTP, `uvicorn.error` for WebSocket handshakes. The filter sits on the handlers, so it
covers records that propagate to them as well as their own loggers'.
"""

from __future__ import annotations

import logging
import re

SECRET_PARAMS = ("token", "access_token", "api_key", "key", "password", "secret", "sessionid")
_SECRET_QUERY = re.compile(
    r"(?P<lead>[?&;](?:%s)=)[^&;\s\"'#]*" % "|".join(SECRET_PARAMS),  # noqa: UP031
    re.IGNORECASE,
)
REDACTED = "[redacted]"


def redact_query_secrets(text: str) -> str:
    return _SECRET_QUERY.sub(lambda m: m.group("lead") + REDACTED, text)


class RedactQuerySecrets(logging.Filter):
    """Rewrites secret query parameters in a record's message and arguments.

    The arguments keep their shape: uvicorn's AccessFormatter unpacks them by position.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact_query_secrets(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact_query_secrets(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {
                k: redact_query_secrets(v) if isinstance(v, str) else v for k, v in record.args.items()
            }
        return True
