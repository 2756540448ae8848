"""Outbound clients connect to the address that was checked, never to a second answer."""

from __future__ import annotations

import httpx
import pytest

from lifecycle.outbound import (
    OutboundRefused,
    _APinnedTransport,
    _PinnedTransport,
    apinned_client,
    pinned_client,
)
from tests.http_servers import Recorder


def ok(recorder, request):
    return 200, {"ok": True}, 0


def test_the_connection_goes_to_the_checked_address_with_the_names_host_header():
    # "rebind.invalid" resolves to nothing at all: the request can only arrive because the
    # transport connects to the address checked earlier, keeping the name for Host.
    with Recorder(ok) as server:
        port = server.server.server_address[1]
        client = httpx.Client(transport=_PinnedTransport("rebind.invalid", ("127.0.0.1",)))
        with client:
            response = client.post(f"http://rebind.invalid:{port}/hook", json={"a": 1})
        assert response.status_code == 200
        [request] = server.requests
    assert request["headers"]["Host"] == f"rebind.invalid:{port}"


async def test_async_connection_goes_to_the_checked_address():
    with Recorder(ok) as server:
        port = server.server.server_address[1]
        async with httpx.AsyncClient(transport=_APinnedTransport("rebind.invalid", ("127.0.0.1",))) as client:
            response = await client.post(f"http://rebind.invalid:{port}/x", json={})
        assert response.status_code == 200
        assert server.requests[0]["headers"]["Host"] == f"rebind.invalid:{port}"


def test_another_host_than_the_checked_one_is_refused():
    with Recorder(ok) as server:
        port = server.server.server_address[1]
        with pinned_client(f"http://localhost:{port}/") as client:
            with pytest.raises(httpx.ConnectError):
                client.post(f"http://127.0.0.1:{port}/", json={})
            assert client.post(f"http://localhost:{port}/", json={}).status_code == 200
        assert len(server.requests) == 1


def test_redirects_are_not_followed():
    def redirect(recorder, request):
        return 307, {}, 0

    with Recorder(redirect) as server, pinned_client(server.url) as client:
        assert client.post(server.url + "/go", json={}).status_code == 307
        assert len(server.requests) == 1


def test_private_addresses_are_refused_before_any_connection(settings):
    settings.OUTBOUND_ALLOWED_HOSTS = []
    with pytest.raises(OutboundRefused):
        pinned_client("http://127.0.0.1:9/")
    with pytest.raises(OutboundRefused):
        pinned_client("http://localhost:9/")


async def test_async_private_addresses_are_refused(settings):
    settings.OUTBOUND_ALLOWED_HOSTS = []
    with pytest.raises(OutboundRefused):
        await apinned_client("http://10.1.2.3/")
