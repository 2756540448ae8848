"""Bad input at the edge is a 4xx with the error envelope, never a 500."""

import base64
import json

import pytest
from django.test import Client

from tests.factories import make_agent

pytestmark = pytest.mark.django_db

DEEP = "[" * 100_000 + "]" * 100_000


def _envelope(response, status, code):
    assert response.status_code == status, response.content[:300]
    body = response.json()
    assert body["error"]["code"] == code, body
    return body


@pytest.mark.parametrize(
    "position",
    [
        "\x00",
        "1.5",
        "NaN",
        "9" * 30,
        "-" + "9" * 30,
        "9999-12-31T23:59:59-23:00",
        "2020-01-01T00:00:00+99:00",
        "2020-01-01T00:00:00+23:00",  # past PostgreSQL's offsets: fine once in UTC
    ],
)
def test_a_crafted_cursor_is_400_on_every_list(world, position):
    agent = make_agent(world.acme, "Paged")
    base = f"/api/v1/orgs/acme/agents/{agent.pk}"
    cursor = base64.b64encode(f"p={position}".encode()).decode()
    client = world.client("admin")
    for url in [
        "/api/v1/orgs/acme/agents/",
        "/api/v1/orgs/acme/stages/",
        "/api/v1/auth/tokens/",
        "/api/v1/orgs/acme/audit/",
        f"{base}/versions/",
        f"{base}/components/",
    ]:
        response = client.get(url, {"cursor": cursor})
        if response.status_code == 200:
            continue  # a position some fields can hold (a large number on a text column)
        body = _envelope(response, 400, "invalid")
        assert body["error"]["fields"] == {"cursor": ["Invalid cursor."]}, (url, body)


def test_a_cursor_the_server_made_still_pages(world):
    for n in range(3):
        make_agent(world.acme, f"Agent {n}")
    client = world.client("admin")
    first = client.get("/api/v1/orgs/acme/agents/", {"page_size": 2}).json()
    assert len(first["results"]) == 2 and first["next"]
    second = client.get(first["next"]).json()
    assert second["results"] and {a["id"] for a in second["results"]}.isdisjoint(
        {a["id"] for a in first["results"]}
    )


def test_deep_json_on_the_anonymous_token_endpoint_is_400():
    response = Client().post("/api/v1/auth/token/", DEEP, content_type="application/json")
    _envelope(response, 400, "invalid")


def test_deep_json_on_an_authenticated_endpoint_is_400(world):
    response = world.client("admin").post("/api/v1/orgs/acme/agents/", DEEP, content_type="application/json")
    _envelope(response, 400, "invalid")


@pytest.mark.parametrize("bad", ["a\x00b", "a\ud800b"])
def test_unstorable_text_in_an_import_document_is_400(world, bad):
    document = {"agent": {"name": bad}, "components": [{"kind": "skill", "name": bad, "spec": {}}]}
    raw = json.dumps(document)  # ensure_ascii escapes both as \u0000 / \ud800
    response = world.client("admin").post(
        "/api/v1/orgs/acme/agents/import/", raw, content_type="application/json"
    )
    _envelope(response, 400, "invalid")


@pytest.mark.parametrize("bad", ["a\x00b", "a\ud800b"])
def test_unstorable_text_in_a_token_request_is_400(bad):
    raw = json.dumps({"email": bad, "password": bad})
    response = Client().post("/api/v1/auth/token/", raw, content_type="application/json")
    _envelope(response, 400, "invalid")


def test_nul_in_an_api_slug_is_not_a_500(world):
    response = world.client("admin").get("/api/v1/orgs/a%00b/")
    assert response.status_code in (400, 404)
    assert response.json()["error"]["code"] in ("invalid", "not_found")


def test_nul_in_a_ui_slug_is_not_a_500(world):
    client = Client()
    client.force_login(world.users["admin"])
    response = client.get("/orgs/a%00b/")
    assert response.status_code in (400, 404)


def test_nesting_past_the_parsers_limit_is_400_with_its_path(world):
    from lifecycle.parsers import MAX_PARSED_DEPTH

    raw = '{"name": "x", "description": ' + "[" * (MAX_PARSED_DEPTH + 5) + "]" * (MAX_PARSED_DEPTH + 5) + "}"
    response = world.client("admin").post("/api/v1/orgs/acme/agents/", raw, content_type="application/json")
    body = _envelope(response, 400, "invalid")
    assert any(path.startswith("description.0.0") for path in body["error"]["fields"]), body


def test_the_parsers_walk_is_iterative_and_finds_the_path():
    from lifecycle.parsers import json_problem

    deep: list = []
    inner = deep
    for _ in range(50_000):  # deeper than any recursion limit
        inner.append([])
        inner = inner[0]
    assert json_problem(deep)[1].startswith("JSON nested deeper")
    assert json_problem({"a": [1, {"b\x00": 2}]}) == (
        "a.1.b\\x00",
        "Null characters and unpaired surrogates are not allowed.",
    )
    assert json_problem({"a": [1, {"b": "x\ud800"}]})[0] == "a.1.b"
    assert json_problem({"a": [1, "fine", {"b": None}]}) is None


@pytest.mark.parametrize(
    "document",
    [
        "[" * 100_000 + "]" * 100_000,
        '{"format_version": 1, "name": "a\\u0000b", "components": []}',
        '{"format_version": 1, "name": "a\\ud800b", "components": []}',
        '{"format_version": 1, "name": "ok", "components": '
        '[{"kind": "skill", "name": "s\\udc00", "spec": {}}]}',
    ],
)
def test_the_ui_import_refuses_what_the_api_refuses(world, document):
    from agents.models import Agent

    client = Client()
    client.force_login(world.users["admin"])
    before = Agent.objects.for_org(world.acme).count()
    page = client.post("/orgs/acme/agents/new/", {"import": "1", "document": document})
    assert page.status_code == 200  # the form again, with the error
    assert b"Not valid JSON" in page.content or b"Null characters" in page.content
    assert Agent.objects.for_org(world.acme).count() == before


async def _call(app, scope, messages):
    """Drive an ASGI app with `messages` as the request; what it sent back."""
    sent, queue = [], list(messages)

    async def receive():
        return queue.pop(0) if queue else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    await app(scope, receive, send)
    return sent


async def test_the_body_limit_reads_a_chunked_body_only_up_to_the_limit(settings):
    from lifecycle.asgi_body import BodyLimitMiddleware

    settings.API_MAX_BODY_BYTES = 10
    seen = {}

    async def inner(scope, receive, send):
        seen["headers"] = dict(scope["headers"])
        seen["body"] = (await receive())["body"]
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    app = BodyLimitMiddleware(inner)
    chunked = {
        "type": "http",
        "method": "PATCH",
        "path": "/api/v1/x/",
        "headers": [(b"transfer-encoding", b"chunked")],
    }
    parts = [{"type": "http.request", "body": b"12345", "more_body": True}] * 100
    sent = await _call(app, chunked, parts)
    assert sent[0]["status"] == 413 and b"too_large" in sent[1]["body"] and not seen
    sent = await _call(
        app,
        chunked,
        [{"type": "http.request", "body": b"{}", "more_body": True}, {"type": "http.request", "body": b"[]"}],
    )
    assert sent[0]["status"] == 200
    assert seen["body"] == b"{}[]" and seen["headers"][b"content-length"] == b"4"
    assert b"transfer-encoding" not in seen["headers"]
    # A chunked GET is capped too: Django reads any method's body.
    sent = await _call(app, {**chunked, "method": "GET"}, parts)
    assert sent[0]["status"] == 413
