"""Outbound HTTP to user-set URLs (tool webhooks, OpenAI-compatible endpoints, webhooks).

Such a URL may not reach loopback, private, link-local or otherwise non-public addresses
unless its host is in LIFECYCLE_OUTBOUND_ALLOWED_HOSTS (tests and `make run` allow
127.0.0.1 for their own servers). The check runs after DNS resolution, so a public name
pointing at 10.0.0.1 is refused too. Every outbound call goes through here.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings

from .errors import DomainError


class OutboundRefused(DomainError):
    status_code, default_code = 400, "outbound_refused"
    default_detail = "That address is not reachable from here."


def _parts(url: str) -> tuple[str, int]:
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise OutboundRefused(f"Not a valid URL: {url!r}.") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OutboundRefused("Only http and https URLs with a host are allowed.")
    return parts.hostname.lower(), port


def _allowed(host: str) -> bool:
    return host in {h.lower() for h in settings.OUTBOUND_ALLOWED_HOSTS}


def _check_addresses(host: str, infos) -> None:
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%", 1)[0])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        if not address.is_global or address.is_multicast:
            raise OutboundRefused(f"{host} resolves to {address}, which is not a public address.")


def check_url(url: str) -> None:
    """Refuse `url` unless its host is allowed or resolves only to public addresses."""
    host, port = _parts(url)
    if _allowed(host):
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise OutboundRefused(f"Cannot resolve {host}.") from exc
    _check_addresses(host, infos)


async def acheck_url(url: str) -> None:
    host, port = _parts(url)
    if _allowed(host):
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise OutboundRefused(f"Cannot resolve {host}.") from exc
    _check_addresses(host, infos)
