"""The gateway refuses text no conversation can store, and end users cannot steer its
outbound calls (issue 8, section 4)."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from rest_framework.test import APIClient

from accounts.models import Stage
from agents.models import Conversation, Turn
from agents.runtime.compile import CACHE
from agents.services.versions import version_save
from agents.tests.test_runtime_safety import SECRET, _echo_agent, echo_headers
from rollouts.services.keys import stage_key_create
from rollouts.tests.test_gateway import live_setup, run_url
from tests.api_mixin import assert_envelope
from tests.factories import owner_access
from tests.http_servers import Recorder


def _raw(client, url, body: bytes):
    return client.generic("POST", url, body, content_type="application/json")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"user": "u", "variables": {"name": "a\\u0000"}}', "variables.name"),
        (b'{"user": "u", "variables": {"\\ud800": "x"}}', "variables.\\ud800"),
        (b'{"user": "\\udfff", "variables": {}}', "user"),
    ],
)
def test_start_refuses_nul_and_lone_surrogates(world, body, field):
    agent, client, _ = live_setup(world)
    response = _raw(client, run_url("acme", agent.lineage.slug, "development"), body)
    fields = assert_envelope(response, 400, "invalid")["error"]["fields"]
    assert field in fields, fields
    assert not Conversation.objects.for_org(world.acme).exists()


@pytest.mark.parametrize(
    "body",
    [b'{"text": "where is my order \\ud800"}', b'{"text": "a\\u0000b"}', b'{"text": "caf\xe9"}'],
)
def test_a_message_with_unstorable_or_non_utf8_text_is_400_and_nothing_is_stored(world, body):
    agent, client, _ = live_setup(world)
    lineage = agent.lineage.slug
    started = client.post(run_url("acme", lineage, "development"), {"user": "u"}, format="json")
    assert started.status_code == 201, started.content
    cid = started.json()["conversation"]
    turns = Turn.objects.for_org(world.acme).filter(conversation_id=cid).count()
    response = _raw(client, run_url("acme", lineage, "development", f"{cid}/messages/"), body)
    assert_envelope(response, 400)
    assert Turn.objects.for_org(world.acme).filter(conversation_id=cid).count() == turns
    fine = client.post(
        run_url("acme", lineage, "development", f"{cid}/messages/"), {"text": "hello"}, format="json"
    )
    assert fine.status_code == 200, fine.content


def _echo_live(world, url):
    """A live agent whose tool echoes the headers it was sent, with a stage key."""
    CACHE.clear()
    access = owner_access(world.acme)
    agent = _echo_agent(world.acme, url)
    version_save(access=access, agent=agent, changelog="echo")
    stage = Stage.objects.for_org(world.acme).get(slug="development")
    _, raw = stage_key_create(access=access, stage=stage, name="widget")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return agent, client


@pytest.mark.django_db(transaction=True)  # the stream records from another thread
def test_an_anonymous_gateway_user_never_sees_a_secret_a_tool_echoed(world, caplog):
    caplog.set_level(logging.DEBUG)
    with Recorder(echo_headers) as server:
        agent, client = _echo_live(world, server.url)
        lineage = agent.lineage.slug
        started = client.post(
            run_url("acme", lineage, "development"),
            {"user": "u", "variables": {"CRM_API_KEY": "attacker", "TENANT": "globex"}},
            format="json",
        )
        assert started.status_code == 201, started.content
        cid = started.json()["conversation"]
        url = run_url("acme", lineage, "development", f"{cid}/messages/")
        answered = client.post(url, {"text": "order ../admin"}, format="json")
        streamed = client.post(url, {"text": "order 7"}, format="json", HTTP_ACCEPT="text/event-stream")

        async def consume():  # as the server would: the stream records its turns at its end
            return [chunk async for chunk in streamed.streaming_content]

        stream = b"".join(asyncio.run(consume())).decode()
    assert answered.status_code == 200, answered.content
    # The stage's secret and tenant were used, whatever the client's variables said.
    assert [r["path"] for r in server.requests] == ["/acme/orders/..%2Fadmin", "/acme/orders/7"]
    assert {r["headers"]["Authorization"] for r in server.requests} == {f"Bearer {SECRET}"}
    body = answered.content.decode()
    assert "Bearer ••••••" in body and SECRET not in body
    assert "Bearer \\u2022" in stream and SECRET not in stream
    turns = list(Turn.objects.for_org(world.acme).filter(conversation_id=cid).values("text", "details"))
    assert SECRET not in json.dumps(turns)
    detail = world.client("owner").get(f"/api/v1/orgs/acme/agents/{agent.pk}/conversations/{cid}/")
    assert detail.status_code == 200 and SECRET not in detail.content.decode()
    assert caplog.records and SECRET not in caplog.text  # nor in the logs


def test_a_webhook_answering_nul_and_lone_surrogates_is_stored_not_a_500(world):
    def poisoned(recorder, request):
        return 200, {"auth": "a\x00b", "headers": {"x\ud800": "\udfff"}, "path": "p"}, 0

    with Recorder(poisoned) as server:
        agent, client = _echo_live(world, server.url)
        lineage = agent.lineage.slug
        cid = client.post(run_url("acme", lineage, "development"), {"user": "u"}, format="json").json()[
            "conversation"
        ]
        answered = client.post(
            run_url("acme", lineage, "development", f"{cid}/messages/"), {"text": "order 1"}, format="json"
        )
    assert answered.status_code == 200, answered.content[:300]
    result = next(e for e in answered.json()["events"] if e["type"] == "tool_result")["result"]
    assert result == {"auth": "a\ufffdb", "headers": {"x\ufffd": "\ufffd"}, "path": "p"}
    turn = (
        Turn.objects.for_org(world.acme).filter(conversation_id=cid, role="agent").order_by("-index").first()
    )
    assert turn.text == "Seen: a\ufffdb {'x\ufffd': '\ufffd'}"
