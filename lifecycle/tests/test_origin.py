"""The WebSocket Origin check compares scheme, host and port with the socket's own."""

import asyncio

import pytest
from django.test import Client

from lifecycle.asgi import application
from lifecycle.origin import websocket_origin_allowed
from tests.factories import make_agent, make_world
from tests.ws import WebsocketCommunicator


def scope(origin: str, host: str = "localhost:8000", scheme: str = "ws") -> dict:
    return {
        "type": "websocket",
        "scheme": scheme,
        "headers": [(b"host", host.encode()), (b"origin", origin.encode())],
    }


@pytest.mark.parametrize(
    ("origin", "host", "scheme"),
    [
        ("http://localhost:8000", "localhost:8000", "ws"),
        ("https://localhost", "localhost", "wss"),
        ("https://localhost:443", "localhost", "wss"),
        ("http://127.0.0.1:8000", "127.0.0.1:8000", "ws"),
        ("http://[::1]:8000", "[::1]:8000", "ws"),
    ],
)
def test_our_own_origin_is_allowed(settings, origin, host, scheme):
    settings.ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]"]
    assert websocket_origin_allowed(scope(origin, host, scheme))


@pytest.mark.parametrize(
    ("origin", "host", "scheme"),
    [
        ("http://localhost.evil.com", "localhost", "ws"),
        ("http://localhost.evil.com:8000", "localhost:8000", "ws"),
        ("https://localhost:9999", "localhost:8000", "ws"),  # another port: another app
        ("http://localhost:9999", "localhost:8000", "ws"),
        ("https://localhost:8000", "localhost:8000", "ws"),  # another scheme
        ("http://localhost", "localhost", "wss"),
        ("http://evil.test:8000", "evil.test:8000", "ws"),  # a Host we do not serve
        ("null", "localhost", "ws"),
        ("", "localhost", "ws"),
        ("http://localhost:notaport", "localhost", "ws"),
        ("http://user@localhost:8000", "localhost:8000", "ws"),
    ],
)
def test_any_other_origin_is_refused(settings, origin, host, scheme):
    settings.ALLOWED_HOSTS = ["localhost", "127.0.0.1"]
    assert not websocket_origin_allowed(scope(origin, host, scheme))


def test_a_trusted_origin_is_allowed_exactly(settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://app.example.com"]
    assert websocket_origin_allowed(scope("https://app.example.com", "internal:8000"))
    assert not websocket_origin_allowed(scope("https://app.example.com:8443", "internal:8000"))


@pytest.mark.django_db(transaction=True)
async def test_the_console_refuses_a_session_from_another_port(settings):
    settings.ALLOWED_HOSTS = ["localhost"]
    world = await asyncio.to_thread(make_world)
    agent = await asyncio.to_thread(make_agent, world.acme, "Origin bot")

    def login_cookie():
        client = Client()
        client.force_login(world.users["developer"])
        return client.cookies["sessionid"].value

    cookie = (b"cookie", f"sessionid={await asyncio.to_thread(login_cookie)}".encode())
    url = f"/ws/orgs/acme/agents/{agent.pk}/conversation/"

    async def close_code(origin: bytes):
        communicator = WebsocketCommunicator(
            application, url, headers=[cookie, (b"host", b"localhost:8000"), (b"origin", origin)]
        )
        await communicator.send_input({"type": "websocket.connect"})
        first = await communicator.receive_output(timeout=5)
        # Refused connections are accepted, then closed with an application code.
        code = first.get("code")
        if first["type"] == "websocket.accept":
            code = "open" if await communicator.receive_nothing(timeout=1) else None
            if code is None:
                code = (await communicator.receive_output(timeout=5)).get("code")
        await communicator.send_input({"type": "websocket.disconnect", "code": 1000})
        await communicator.wait(5)
        return code

    assert await close_code(b"https://localhost:9999") == 4401
    assert await close_code(b"http://localhost.evil.com:8000") == 4401
    assert await close_code(b"http://localhost:8000") == "open"


@pytest.mark.django_db(transaction=True)
async def test_frames_sent_before_the_refusal_is_read_are_ignored(caplog):
    world = await asyncio.to_thread(make_world)
    agent = await asyncio.to_thread(make_agent, world.acme, "Refused bot")
    communicator = WebsocketCommunicator(
        application,
        f"/ws/orgs/acme/agents/{agent.pk}/conversation/",
        headers=[(b"origin", b"http://evil.test")],
    )
    await communicator.send_input({"type": "websocket.connect"})
    assert (await communicator.receive_output(timeout=5))["type"] == "websocket.accept"
    await communicator.send_json_to({"type": "user_message", "text": "hello"})  # before reading the close
    assert (await communicator.receive_output(timeout=5))["code"] == 4401
    assert await communicator.receive_nothing(timeout=0.5)
    await communicator.send_input({"type": "websocket.disconnect", "code": 1000})
    await communicator.wait(5)
    assert not [r for r in caplog.records if r.levelname == "ERROR"], caplog.text
