"""The WebSocket Origin check: a browser's session cookie is only good from our own pages.

Comparing host names alone let `https://host:other-port` (another app on the same host)
and any scheme through. The Origin must be the very origin the socket was opened on:
the same scheme (ws -> http, wss -> https), host and port as the request's own Host,
and that host must be one of ALLOWED_HOSTS. Origins listed in CSRF_TRUSTED_ORIGINS
(exactly, as Django's CSRF check takes them) are accepted too, for a proxy that
rewrites Host.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.http.request import split_domain_port, validate_host

_DEFAULT_PORTS = {"http": 80, "https": 443}


def _header(scope, name: bytes) -> str:
    for key, value in scope.get("headers") or []:
        if key.lower() == name:
            return value.decode("latin-1")
    return ""


def websocket_origin_allowed(scope) -> bool:
    origin = _header(scope, b"origin").strip().lower()
    if not origin or origin == "null":
        return False
    if origin in {o.lower().rstrip("/") for o in settings.CSRF_TRUSTED_ORIGINS}:
        return True
    try:
        parts = urlsplit(origin)
        origin_port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
    except ValueError:  # a port that is not a number, or out of range
        return False
    if parts.path not in ("", "/") or parts.username or parts.password:
        return False

    domain, port = split_domain_port(_header(scope, b"host"))
    allowed_hosts = settings.ALLOWED_HOSTS or ["localhost", "127.0.0.1", "[::1]"]
    if not domain or not validate_host(domain, allowed_hosts):
        return False
    scheme = "https" if scope.get("scheme") in ("wss", "https") else "http"
    try:
        own_port = int(port) if port else _DEFAULT_PORTS[scheme]
    except ValueError:
        return False
    return parts.scheme == scheme and (parts.hostname or "") == domain.strip("[]") and origin_port == own_port
