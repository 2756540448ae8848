"""Bad frames through a real uvicorn: an `error` frame each, and the socket stays open."""

import asyncio
import json

import pytest
import websockets

from accounts.demo import seed_demo_org
from accounts.models import User
from accounts.services.auth import token_create
from agents.demo import seed_demo_agent

pytestmark = pytest.mark.django_db(transaction=True)


def test_deep_json_nul_and_non_utf8_frames_get_error_frames_and_the_socket_stays_open(asgi_server):
    org, _ = seed_demo_org()
    agent = seed_demo_agent(org)
    _, token = token_create(user=User.objects.get(email="tester@acme.test"), name="ws")
    url = (
        asgi_server.replace("http://", "ws://")
        + f"/ws/orgs/{org.slug}/agents/{agent.pk}/conversation/?token={token}"
    )
    bad = [
        '{"type": "user_message", "text": ' + "[" * 30_000 + "]" * 30_000 + "}",  # under 64 KB
        json.dumps({"type": "conversation_initiation_client_data", "dynamic_variables": {"name": "a\x00"}}),
        '{"type": "user_message", "text": "\\ud800"}',
        b'{"type": "user_message", "text": "\xff\xfe"}',  # a binary frame that is not UTF-8
    ]

    async def talk():
        async with websockets.connect(url, max_size=2**20, open_timeout=60) as socket:
            # Frames are not compressed (--ws-per-message-deflate false): nothing negotiated.
            extensions = socket.response.headers.get("Sec-WebSocket-Extensions")
            errors = []
            for frame in bad:
                await socket.send(frame)
                errors.append(json.loads(await asyncio.wait_for(socket.recv(), timeout=30)))
            await socket.send(json.dumps({"type": "user_message", "text": "hello"}))
            while True:
                frame = json.loads(await asyncio.wait_for(socket.recv(), timeout=30))
                if frame["type"] == "agent_response" and frame["text"].startswith("Hello"):
                    return extensions, errors

    extensions, errors = asyncio.run(talk())
    assert extensions is None
    assert [(e["type"], e["code"]) for e in errors] == [
        ("error", "malformed"),
        ("error", "invalid"),
        ("error", "invalid"),
        ("error", "invalid"),
    ]
