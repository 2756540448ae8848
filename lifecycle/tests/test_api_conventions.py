"""The conventions every endpoint shares: envelope, idempotency, pagination, body limits."""

import pytest
from django.core.exceptions import ImproperlyConfigured
from rest_framework.test import APIRequestFactory

from accounts.models import Stage
from lifecycle.errors import PreconditionFailed, flatten_fields
from lifecycle.etags import check_if_match, etag_of
from lifecycle.idempotency import IdempotencyRecord, idempotency_purge
from lifecycle.pagination import OrderedCursorPagination
from tests.api_mixin import assert_envelope

STAGES = "/api/v1/orgs/acme/stages/"


def test_unknown_api_paths_get_the_envelope(world):
    client = world.client("admin")
    assert_envelope(client.get("/api/v1/nothing/here/"), 404, "not_found")
    assert_envelope(client.get("/api/v2/orgs/"), 404, "not_found")
    hinted = assert_envelope(client.get("/api/v1/orgs"), 404, "not_found")
    assert hinted["error"]["details"]["hint"].endswith("/api/v1/orgs/")


def test_method_not_allowed_is_405_envelope(world):
    assert_envelope(
        world.client("admin").put(STAGES + "testing/", {}, format="json"), 405, "method_not_allowed"
    )


def test_unsupported_media_type_is_an_envelope(world):
    response = world.client("admin").post(
        STAGES, data="name=x", content_type="application/x-www-form-urlencoded"
    )
    assert_envelope(response, 415, "unsupported_media_type")


def test_body_over_the_limit_is_413(world, settings):
    settings.API_MAX_BODY_BYTES = 1000
    response = world.client("admin").post(STAGES, {"name": "x" * 2000}, format="json")
    assert_envelope(response, 413, "too_large")
    assert not Stage.objects.for_org(world.acme).filter(name__startswith="xxx").exists()


def test_idempotency_key_replays_the_first_response(world):
    client = world.client("admin")
    first = client.post(STAGES, {"name": "QA"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = client.post(STAGES, {"name": "QA"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert again["Idempotent-Replayed"] == "true"
    assert again["Content-Type"] == first["Content-Type"] == "application/json"
    assert first["ETag"] == again["ETag"]
    assert Stage.objects.for_org(world.acme).filter(slug="qa").count() == 1
    # Without the key the same request is a new one (and a conflict here).
    assert_envelope(client.post(STAGES, {"name": "QA"}, format="json"), 409, "conflict")
    # The same key with another body is refused; so is the key on another path.
    assert_envelope(
        client.post(STAGES, {"name": "QB"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1"), 409, "conflict"
    )
    other_path = client.post("/api/v1/orgs/", {"name": "Another"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert other_path.status_code == 201


def test_idempotency_keys_are_per_user_and_errors_replay_too(world):
    admin, owner = world.client("admin"), world.client("owner")
    bad = admin.post(STAGES, {"name": ""}, format="json", HTTP_IDEMPOTENCY_KEY="same")
    assert bad.status_code == 400
    assert admin.post(STAGES, {"name": ""}, format="json", HTTP_IDEMPOTENCY_KEY="same")["Idempotent-Replayed"]
    assert owner.post(STAGES, {"name": "Ok"}, format="json", HTTP_IDEMPOTENCY_KEY="same").status_code == 201


def test_old_idempotency_records_are_purged(world):
    world.client("admin").post(STAGES, {"name": "QA"}, format="json", HTTP_IDEMPOTENCY_KEY="old")
    IdempotencyRecord.objects.update(created_at="2000-01-01T00:00:00Z")
    assert idempotency_purge() == 1
    assert not IdempotencyRecord.objects.exists()


def test_if_match_semantics():
    current = etag_of({"a": 1})
    assert current == etag_of({"a": 1}) != etag_of({"a": 2})
    check_if_match(None, current)
    check_if_match("*", current)
    check_if_match(f'"nope", {current}', current)
    check_if_match(f"W/{current}", current)
    with pytest.raises(PreconditionFailed):
        check_if_match('"nope"', current)


def test_pagination_refuses_an_unordered_queryset(world):
    from lifecycle.operations import Operation

    paginator = OrderedCursorPagination()
    request = APIRequestFactory().get("/")
    from rest_framework.request import Request

    unordered = Operation.objects.for_org(world.acme).order_by()
    with pytest.raises(ImproperlyConfigured, match="unordered"):
        paginator.paginate_queryset(unordered, Request(request), view=object())


def test_nested_field_errors_flatten_to_dotted_paths():
    detail = {"spec": {"utterances": [{}, ["This field may not be blank."]]}, "non_field_errors": ["Bad."]}
    assert flatten_fields(detail) == {"spec.utterances.1": ["This field may not be blank."], "": ["Bad."]}


def test_unstorable_characters_are_a_400_and_replay_safely(world):
    client = world.client("admin")
    nul_key = '{"\\u0000bad": 1, "name": "x"}'
    lone_surrogate = '{"name": "bad \\udaeb name"}'
    first = client.post(STAGES, data=nul_key, content_type="application/json", HTTP_IDEMPOTENCY_KEY="nul")
    # Refused by the parser, before any serializer looks at the field names.
    assert assert_envelope(first, 400, "invalid")["error"]["fields"] == {
        "\\x00bad": ["Null characters and unpaired surrogates are not allowed."]
    }
    replay = client.post(STAGES, data=nul_key, content_type="application/json", HTTP_IDEMPOTENCY_KEY="nul")
    assert replay.status_code == 400 and replay.json() == first.json()
    body = assert_envelope(client.post(STAGES, data=lone_surrogate, content_type="application/json"), 400)
    assert body["error"]["fields"] == {"name": ["Null characters and unpaired surrogates are not allowed."]}
    assert not Stage.objects.for_org(world.acme).filter(name__startswith="bad").exists()


def test_unstorable_characters_in_a_query_string_are_a_400(world):
    body = assert_envelope(world.client("admin").get("/api/v1/orgs/acme/audit/?actor=a%00b"), 400, "invalid")
    assert body["error"]["fields"] == {"actor": ["Null characters and unpaired surrogates are not allowed."]}
    from django.test import Client

    client = Client()
    client.force_login(world.users["admin"])
    assert client.get("/orgs/acme/audit/?action=x%00").status_code == 400
