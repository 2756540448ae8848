"""A real counter of failed logins, shared by the UI and the token endpoint.

Counts live in the cache (Redis in production, the shared file cache in `make run`),
so every web process sees the same numbers. Too many failures for one email, or from
one address, are refused with 429 before the password is even checked.
"""

import hashlib

from django.conf import settings
from django.core.cache import cache

from lifecycle.cache import count
from lifecycle.errors import Throttled


def _keys(email: str, ip: str | None) -> tuple[str, str]:
    # Hashed: an email is user input of any length and alphabet; a key must be neither.
    digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()
    return f"login-fail:email:{digest}", f"login-fail:ip:{ip or '-'}"


def login_guard_check(email: str, ip: str | None) -> None:
    email_key, ip_key = _keys(email, ip)
    if (cache.get(email_key) or 0) >= settings.LOGIN_FAILURE_LIMIT or (
        cache.get(ip_key) or 0
    ) >= settings.LOGIN_FAILURE_IP_LIMIT:
        raise Throttled(
            "Too many failed sign-in attempts. Try again later.",
            retry_after=settings.LOGIN_FAILURE_WINDOW,
        )


def login_guard_failed(email: str, ip: str | None) -> None:
    for key in _keys(email, ip):
        count(key, settings.LOGIN_FAILURE_WINDOW)


def login_guard_succeeded(email: str, ip: str | None) -> None:
    cache.delete(_keys(email, ip)[0])
