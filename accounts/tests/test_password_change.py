"""Changing the password ends every other sign-in, and current-password guesses are throttled."""

import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import ApiToken
from accounts.services.auth import token_create
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

NEW = "a-brand-new-passphrase-42"


def _token_client(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def _session(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_an_api_change_revokes_other_tokens_and_ends_sessions(world):
    user = world.users["developer"]
    _, current = token_create(user=user, name="current")
    _, other = token_create(user=user, name="other")
    browser = _session(user)
    assert browser.get("/api/v1/me/").status_code == 200

    changed = _token_client(current).post(
        "/api/v1/auth/password/", {"old_password": PASSWORD, "new_password": NEW}, format="json"
    )
    assert changed.status_code == 204, changed.content
    assert _token_client(current).get("/api/v1/me/").status_code == 200  # the caller keeps going
    assert _token_client(other).get("/api/v1/me/").status_code == 401
    assert browser.get("/api/v1/me/").status_code in (401, 403)
    assert ApiToken.objects.filter(user=user, revoked_at__isnull=True).count() == 1


def test_a_session_change_keeps_that_session_only(world):
    user = world.users["developer"]
    _, key = token_create(user=user, name="ci")
    here, elsewhere = _session(user), _session(user)
    changed = here.post(
        "/account/",
        {"change_password": "1", "old_password": PASSWORD, "new_password": NEW, "new_password2": NEW},
    )
    assert changed.status_code == 302, changed.content[:2000]
    assert here.get("/account/").status_code == 200
    assert elsewhere.get("/account/").status_code == 302  # back to the sign-in page
    assert _token_client(key).get("/api/v1/me/").status_code == 401


def test_an_api_session_change_keeps_that_session(world):
    user = world.users["developer"]
    browser = _session(user)
    csrf_free = APIClient()
    csrf_free.force_login(user)
    changed = csrf_free.post(
        "/api/v1/auth/password/", {"old_password": PASSWORD, "new_password": NEW}, format="json"
    )
    assert changed.status_code == 204, changed.content
    assert csrf_free.get("/api/v1/me/").status_code == 200
    assert browser.get("/api/v1/me/").status_code in (401, 403)


def test_current_password_guesses_are_throttled(world, settings):
    user = world.users["developer"]
    _, key = token_create(user=user, name="stolen")
    client = _token_client(key)
    codes = [
        client.post(
            "/api/v1/auth/password/", {"old_password": f"guess-{n}", "new_password": NEW}, format="json"
        ).status_code
        for n in range(settings.LOGIN_FAILURE_LIMIT)
    ]
    assert codes == [400] * settings.LOGIN_FAILURE_LIMIT
    # Past the limit even the right password is refused, until the window passes.
    blocked = client.post(
        "/api/v1/auth/password/", {"old_password": PASSWORD, "new_password": NEW}, format="json"
    )
    assert blocked.status_code == 429 and blocked.json()["error"]["code"] == "throttled"
    assert blocked["Retry-After"]
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


def test_ui_guesses_are_throttled_too(world, settings):
    browser = _session(world.users["developer"])
    for n in range(settings.LOGIN_FAILURE_LIMIT + 1):
        page = browser.post(
            "/account/",
            {"change_password": "1", "old_password": f"guess-{n}", "new_password": NEW, "new_password2": NEW},
        )
    assert page.status_code == 200 and b"Too many wrong current passwords" in page.content
