import hashlib
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiToken, User
from lifecycle.audit import AuditEvent
from tests.api_mixin import assert_envelope
from tests.factories import PASSWORD, make_user

TOKEN = "/api/v1/auth/token/"
TOKENS = "/api/v1/auth/tokens/"


def sign_in(email, password=PASSWORD, remote_addr="127.0.0.1", **fields):
    client = APIClient(REMOTE_ADDR=remote_addr)
    return client.post(TOKEN, {"email": email, "password": password, **fields}, format="json")


def test_token_round_trip_and_hashed_storage(world):
    response = sign_in("viewer@acme.test", name="ci", expires_in_days=7)
    assert response.status_code == 201, response.content
    body = response.json()
    key = body["token"]
    assert set(body) == {"id", "name", "token", "expires_at"}
    stored = ApiToken.objects.get(pk=body["id"])
    assert stored.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert key not in str(ApiToken.objects.filter(pk=body["id"]).values().first())
    assert timedelta(days=6) < stored.expires_at - timezone.now() <= timedelta(days=7)

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get("/api/v1/me/").json()["email"] == "viewer@acme.test"
    assert [o["slug"] for o in client.get("/api/v1/orgs/").json()["results"]] == ["acme"]
    # The key is never shown again, and never appears in the audit log.
    listed = client.get(TOKENS).json()["results"]
    assert {"ci"} <= {t["name"] for t in listed}
    assert key not in str(listed)
    assert not any(key in str(e.changes) + e.target_repr for e in AuditEvent.objects.for_org(world.acme))

    assert client.delete(TOKEN).status_code == 204
    assert_envelope(client.get("/api/v1/me/"), 401, "unauthenticated")


def test_named_tokens_can_be_revoked_one_by_one(world):
    user = world.users["developer"]
    keys = [sign_in(user.email, name=name).json() for name in ("ci-a", "ci-b")]
    client_a, client_b = APIClient(), APIClient()
    client_a.credentials(HTTP_AUTHORIZATION=f"Token {keys[0]['token']}")
    client_b.credentials(HTTP_AUTHORIZATION=f"Token {keys[1]['token']}")
    assert client_b.delete(f"{TOKENS}{keys[0]['id']}/").status_code == 204
    assert_envelope(client_a.get("/api/v1/me/"), 401)
    assert client_b.get("/api/v1/me/").status_code == 200
    # Another user's token id is missing, not forbidden.
    other = sign_in("viewer@acme.test").json()
    assert_envelope(client_b.delete(f"{TOKENS}{other['id']}/"), 404, "not_found")


def test_create_a_named_token_while_signed_in(world):
    created = world.client("developer").post(
        TOKENS, {"name": "pipeline", "expires_in_days": 30}, format="json"
    )
    assert created.status_code == 201
    assert created.json()["token"].startswith("lc_")
    assert_envelope(
        world.client("developer").post(TOKENS, {"name": "x", "expires_in_days": 9999}, format="json"), 400
    )


def test_expired_and_revoked_tokens_are_refused(world):
    key = sign_in("viewer@acme.test").json()["token"]
    ApiToken.objects.filter(user=world.users["viewer"]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    body = assert_envelope(client.get("/api/v1/me/"), 401, "unauthenticated")
    assert "expired" in body["error"]["message"]


def test_deactivated_user_token_is_refused(world):
    key = sign_in("viewer@acme.test").json()["token"]
    User.objects.filter(email="viewer@acme.test").update(is_active=False)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert_envelope(client.get("/api/v1/me/"), 401)


def test_wrong_password_is_401_and_a_burst_is_429(world, settings):
    settings.LOGIN_FAILURE_LIMIT = 5
    for _ in range(5):
        assert_envelope(sign_in("viewer@acme.test", "wrong-password"), 401, "unauthenticated")
    throttled = sign_in("viewer@acme.test", "wrong-password")
    assert_envelope(throttled, 429, "throttled")
    assert int(throttled["Retry-After"]) > 0
    # Even the right password waits out the window: the counter is real, not advisory.
    assert_envelope(sign_in("viewer@acme.test"), 429, "throttled")
    # Another account from elsewhere is unaffected.
    assert sign_in("developer@acme.test", remote_addr="10.9.9.9").status_code == 201


def test_many_accounts_from_one_address_are_throttled_too(world, settings):
    settings.LOGIN_FAILURE_IP_LIMIT = 3
    for n in range(3):
        assert sign_in(f"nobody{n}@x.test", "nope").status_code == 401
    assert_envelope(sign_in("viewer@acme.test"), 429)


def test_change_password(world):
    client = world.client("viewer")
    wrong = client.post(
        "/api/v1/auth/password/", {"old_password": "bad", "new_password": "a-new-password-9"}, format="json"
    )
    assert assert_envelope(wrong, 400)["error"]["fields"] == {
        "old_password": ["Your current password is not correct."]
    }
    weak = client.post(
        "/api/v1/auth/password/", {"old_password": PASSWORD, "new_password": "123"}, format="json"
    )
    assert "new_password" in assert_envelope(weak, 400)["error"]["fields"]
    ok = client.post(
        "/api/v1/auth/password/",
        {"old_password": PASSWORD, "new_password": "a-new-password-9"},
        format="json",
    )
    assert ok.status_code == 204
    assert sign_in("viewer@acme.test", "a-new-password-9").status_code == 201
    event = AuditEvent.objects.for_org(world.acme).get(action="password.change")
    assert "a-new-password-9" not in str(event.changes)


def test_bad_token_requests_are_400_not_500(db):
    client = APIClient()
    for payload in (
        {},
        {"email": "not-an-email", "password": "x"},
        {"email": "a@b.c", "password": "x\x00"},
        {"email": "a@b.c", "password": "x" * (1024 * 1024)},
        {"email": "a@b.c", "password": "x", "nmae": "typo"},
    ):
        assert_envelope(client.post(TOKEN, payload, format="json"), 400, "invalid")


def test_session_cannot_revoke_itself_as_a_token(world):
    client = APIClient()
    client.force_login(world.users["viewer"])
    assert_envelope(client.delete(TOKEN), 400, "invalid")


@pytest.mark.django_db
def test_createsuperuser_noinput_from_env(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_EMAIL", "root@example.test")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "s3cret-enough-pass")
    call_command("createsuperuser", "--noinput")
    user = User.objects.get(email="root@example.test")
    assert user.is_superuser and user.is_staff and user.check_password("s3cret-enough-pass")


def test_token_last_used_is_recorded(world):
    user = make_user()
    key = sign_in(user.email).json()["token"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    client.get("/api/v1/me/")
    assert ApiToken.objects.get(user=user).last_used_at is not None
