"""Masking of secret-looking values before they reach audit entries or logs.

Services are expected never to pass secrets along; this is the seat belt.
"""

import re

REDACTED = "[redacted]"
_SENSITIVE_KEY = re.compile(
    r"(pass(word)?|secret|token|api[_-]?key|authorization|credential|private[_-]?key|cookie)",
    re.IGNORECASE,
)


def redact(value):
    if isinstance(value, dict):
        secret_flag = value.get("secret") is True
        out = {}
        for key, item in value.items():
            if (
                isinstance(item, (str, bytes))
                and item
                and (_SENSITIVE_KEY.search(str(key)) or (secret_flag and key == "value"))
            ):
                out[key] = REDACTED
            else:
                out[key] = redact(item)
        return out
    if isinstance(value, (list, tuple)):
        return [redact(item) for item in value]
    return value
