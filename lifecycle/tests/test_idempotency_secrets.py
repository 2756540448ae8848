"""A response that carries a secret is never stored for idempotent replay."""

import pytest

from lifecycle.idempotency import IdempotencyRecord

pytestmark = pytest.mark.django_db


def _stored_bodies() -> list[bytes]:
    return [bytes(record.body or b"") for record in IdempotencyRecord.objects.all()]


@pytest.mark.parametrize(
    ("url", "body", "secret_field"),
    [
        ("/api/v1/auth/tokens/", {"name": "ci"}, "token"),
        ("/api/v1/orgs/acme/stages/production/keys/", {"name": "web"}, "key"),
    ],
)
def test_a_secret_is_not_stored_and_its_replay_is_409(world, url, body, secret_field):
    client = world.client("owner")
    first = client.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="once")
    assert first.status_code == 201, first.content
    secret = first.json()[secret_field]
    assert secret
    stored = _stored_bodies()
    assert stored and not any(secret.encode() in row for row in stored)

    replay = client.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="once")
    assert replay.status_code == 409, replay.content
    error = replay.json()["error"]
    assert error["code"] == "conflict" and "shown once" in error["message"]
    assert secret not in replay.content.decode()


def test_a_response_without_a_secret_is_still_replayed(world):
    client = world.client("owner")
    body = {"name": "Replayed", "slug": "replayed"}
    first = client.post("/api/v1/orgs/acme/stages/", body, format="json", HTTP_IDEMPOTENCY_KEY="stage")
    replay = client.post("/api/v1/orgs/acme/stages/", body, format="json", HTTP_IDEMPOTENCY_KEY="stage")
    assert first.status_code == 201 and replay.status_code == 201
    assert replay.json() == first.json() and replay["Idempotent-Replayed"] == "true"
