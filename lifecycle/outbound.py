"""Outbound HTTP to user-set URLs (tool webhooks, OpenAI-compatible endpoints, webhooks).

Such a URL may not reach loopback, private, link-local or otherwise non-public addresses
unless its host is in LIFECYCLE_OUTBOUND_ALLOWED_HOSTS (tests and `make run` allow
127.0.0.1 for their own servers). The check runs after DNS resolution, so a public name
pointing at 10.0.0.1 is refused too. Every outbound call goes through here.

`pinned_client` / `apinned_client` then connect to the very address that was checked:
the name is resolved once, and the connection goes to that IP while the Host header and
TLS (SNI and certificate) still use the name. A DNS answer that changes between the check
and the connection (DNS rebinding) cannot steer the request to a private address.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from functools import lru_cache
from urllib.parse import urlsplit

import httpcore
import httpx
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


_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052: the IPv4 address is the last 32 bits
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215: local-use, never public
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated ::a.b.c.d


def _public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether `address` is public, judging an IPv6 form that embeds an IPv4 address by
    that IPv4 address. Python's is_global calls 64:ff9b::7f00:1 (NAT64 for 127.0.0.1),
    2002:a00:1:: (6to4 for 10.0.0.1) and ::7f00:1 public: through a NAT64 gateway or a
    6to4 relay they reach the embedded address."""
    if not address.is_global or address.is_multicast:
        return False
    if isinstance(address, ipaddress.IPv4Address):
        return True
    if address in _NAT64_LOCAL:
        return False
    embedded: list[ipaddress.IPv4Address] = []
    if address.ipv4_mapped is not None:
        embedded.append(address.ipv4_mapped)
    if address.sixtofour is not None:
        embedded.append(address.sixtofour)
    if address.teredo is not None:
        embedded.extend(address.teredo)  # (server, client): both must be public
    if address in _NAT64 or address in _IPV4_COMPATIBLE:
        embedded.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return all(_public(inner) for inner in embedded)


def _check_addresses(host: str, infos) -> None:
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%", 1)[0])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        if not _public(address):
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


def _addresses(host: str, infos) -> tuple[str, ...]:
    found = tuple(dict.fromkeys(info[4][0].split("%", 1)[0] for info in infos))
    if not found:
        raise OutboundRefused(f"Cannot resolve {host}.")
    return found


def resolve_checked(url: str) -> tuple[str, tuple[str, ...]]:
    """(host, addresses): the URL's host and the addresses it was checked to resolve to."""
    host, port = _parts(url)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise OutboundRefused(f"Cannot resolve {host}.") from exc
    if not _allowed(host):
        _check_addresses(host, infos)
    return host, _addresses(host, infos)


async def aresolve_checked(url: str) -> tuple[str, tuple[str, ...]]:
    host, port = _parts(url)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise OutboundRefused(f"Cannot resolve {host}.") from exc
    if not _allowed(host):
        _check_addresses(host, infos)
    return host, _addresses(host, infos)


def _check_host(host: str, requested: str) -> None:
    # Another host (a redirect, a URL built later) was never checked: refuse it.
    if requested.lower().strip("[]") != host.strip("[]"):
        raise httpcore.ConnectError(f"{requested} is not the checked host {host}.")


class _PinnedBackend(httpcore.SyncBackend):
    def __init__(self, host: str, addresses: tuple[str, ...]):
        self.host, self.addresses = host, addresses

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        _check_host(self.host, host)
        error = None
        for address in self.addresses:  # each checked address in turn, as a resolver would
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        raise error

    def connect_unix_socket(self, *args, **kwargs):
        raise httpcore.ConnectError("Unix sockets are not reachable from here.")


class _APinnedBackend(httpcore.AnyIOBackend):
    def __init__(self, host: str, addresses: tuple[str, ...]):
        self.host, self.addresses = host, addresses

    async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        _check_host(self.host, host)
        error = None
        for address in self.addresses:
            try:
                return await super().connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        raise error

    async def connect_unix_socket(self, *args, **kwargs):
        raise httpcore.ConnectError("Unix sockets are not reachable from here.")


@lru_cache(maxsize=1)
def _ssl_context():
    # Loading the CA bundle costs tens of milliseconds: once per process, not per call.
    # trust_env=False: SSL_CERT_FILE and friends are not consulted, like proxies below.
    return httpx.create_ssl_context(trust_env=False)


class _PinnedTransport(httpx.HTTPTransport):
    # HTTPTransport.__init__ is skipped on purpose: it would build a pool (and an SSL
    # context) that is thrown away, and honour HTTP(S)_PROXY, which resolves the name itself.
    def __init__(self, host: str, addresses: tuple[str, ...]):
        self._pool = httpcore.ConnectionPool(
            ssl_context=_ssl_context(), network_backend=_PinnedBackend(host, addresses)
        )


class _APinnedTransport(httpx.AsyncHTTPTransport):
    def __init__(self, host: str, addresses: tuple[str, ...]):
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=_ssl_context(), network_backend=_APinnedBackend(host, addresses)
        )


def pinned_client(url: str, **kwargs) -> httpx.Client:
    """An httpx client that may only reach `url`'s host, at the address that was checked.
    Raises OutboundRefused as check_url does. Redirects are not followed."""
    host, addresses = resolve_checked(url)
    return httpx.Client(
        transport=_PinnedTransport(host, addresses), follow_redirects=False, trust_env=False, **kwargs
    )


async def apinned_client(url: str, **kwargs) -> httpx.AsyncClient:
    host, addresses = await aresolve_checked(url)
    return httpx.AsyncClient(
        transport=_APinnedTransport(host, addresses), follow_redirects=False, trust_env=False, **kwargs
    )
