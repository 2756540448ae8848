"""Action approvals on live traffic, end to end: a real uvicorn, a real Celery worker,
PostgreSQL and Redis. The message stops at the waiting call; the decision (or the
timeout) has the worker produce the rest, which the events endpoint long-polls or streams."""

import json
import time

import httpx
import pytest

from accounts.services.auth import token_create
from agents.models import ActionApproval, Turn
from agents.tests.approvals_setup import SECRET, refund_agent, refund_server_handler
from tests.factories import make_world
from tests.http_servers import Recorder

pytestmark = pytest.mark.django_db(transaction=True)


def talk(asgi_server, world, server, timeout="15m"):
    agent, key = refund_agent(world.acme, server.url, timeout=timeout)
    base = f"/api/v1/run/acme/{agent.lineage.slug}/development/conversations/"
    http = httpx.Client(base_url=asgi_server, timeout=60, headers={"Authorization": f"Bearer {key}"})
    cid = http.post(base, json={"user": "u"}).json()["conversation"]
    said = http.post(f"{base}{cid}/messages/", json={"text": f"refund order 99 note {SECRET}"})
    assert said.status_code == 200, said.text
    return http, f"{base}{cid}/", cid, said.json()["events"]


def test_approved_from_the_api_the_worker_runs_the_tool_and_the_long_poll_gets_the_answer(
    asgi_server, worker_factory
):
    worker_factory()
    world = make_world()
    with Recorder(refund_server_handler) as server:
        http, conv, cid, said = talk(asgi_server, world, server)
        waiting = said[-1]
        assert waiting["type"] == "tool_approval_requested"
        assert waiting["parameters"] == {"order_id": "99", "note": "••••••"}
        assert SECRET not in json.dumps(said)
        _, token = token_create(user=world.users["developer"], name="ci")
        decided = httpx.post(
            f"{asgi_server}/api/v1/orgs/acme/action-approvals/{waiting['approval']}/approve/",
            json={"comment": "ok"},
            headers={"Authorization": f"Token {token}"},
            timeout=30,
        )
        assert decided.status_code == 200, decided.text
        started = time.monotonic()
        rest = http.get(f"{conv}events/", params={"after": waiting["seq"], "wait": 25}).json()
        # The long-poll answered when the worker's events arrived, not at its deadline.
        assert time.monotonic() - started < 20, rest
        if not rest["done"]:
            more = http.get(f"{conv}events/", params={"after": rest["events"][-1]["seq"], "wait": 25}).json()
            rest = {**more, "events": rest["events"] + more["events"]}
        assert rest["done"] is True
        assert rest["events"][0]["result"] == {"refund_id": "R-99"}
        assert rest["events"][-1]["text"] == "Refund R-99 issued for order 99."
        assert (
            len(server.requests) == 1 and server.requests[0]["headers"]["Authorization"] == f"Bearer {SECRET}"
        )
        # The stream replays the same events, then says done.
        with http.stream(
            "GET",
            f"{conv}events/",
            params={"after": waiting["seq"], "wait": 5},
            headers={"Accept": "text/event-stream"},
        ) as response:
            body = "".join(response.iter_text())
        assert body.rstrip().endswith("event: done\ndata: {}")
        assert "Refund R-99 issued" in body
        # The conversation goes on.
        assert (
            http.post(f"{conv}messages/", json={"text": "hello"}).json()["events"][-1]["type"]
            == "agent_response"
        )
        http.close()
    texts = list(
        Turn.objects.for_org(world.acme)
        .filter(conversation_id=cid)
        .order_by("index")
        .values_list("text", flat=True)
    )
    assert "Refund R-99 issued for order 99." in texts


def test_nobody_decides_the_call_expires_and_the_agent_answers_without_it(asgi_server, worker_factory):
    worker_factory()
    world = make_world()
    with Recorder(refund_server_handler) as server:
        http, conv, _, said = talk(asgi_server, world, server, timeout="2s")
        waiting = said[-1]
        deadline = time.monotonic() + 30
        rest = {"done": False, "events": []}
        while not rest["done"] and time.monotonic() < deadline:
            found = http.get(f"{conv}events/", params={"after": waiting["seq"], "wait": 5}).json()
            rest = {**found, "events": found["events"] or rest["events"]}
        http.close()
        assert server.requests == []
    assert rest["done"] is True and rest["approval"]["status"] == "expired"
    assert rest["events"][0]["error"] == "expired"
    assert rest["events"][-1]["type"] == "agent_response"
    assert ActionApproval.objects.for_org(world.acme).get(pk=waiting["approval"]).status == "expired"
