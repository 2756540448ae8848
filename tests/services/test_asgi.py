"""The app served by a real uvicorn process, on PostgreSQL and Redis."""

import httpx
import pytest

from tests.factories import PASSWORD, make_world

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_client_gets_a_token_and_reads_its_org_over_http(asgi_server):
    make_world()
    with httpx.Client(base_url=asgi_server, timeout=10) as http:
        issued = http.post(
            "/api/v1/auth/token/", json={"email": "tester@acme.test", "password": PASSWORD, "name": "ci"}
        )
        assert issued.status_code == 201, issued.text
        headers = {"Authorization": f"Token {issued.json()['token']}"}
        orgs = http.get("/api/v1/orgs/", headers=headers).json()["results"]
        assert [o["slug"] for o in orgs] == ["acme"]
        stages = http.get("/api/v1/orgs/acme/stages/", headers=headers).json()["results"]
        assert [s["slug"] for s in stages] == ["development", "testing", "staging", "production"]
        members = http.get("/api/v1/orgs/acme/members/", headers=headers)
        assert members.status_code == 200 and members.headers["x-request-id"]
        foreign = http.get("/api/v1/orgs/globex/members/", headers=headers)
        assert foreign.status_code == 404 and foreign.json()["error"]["code"] == "not_found"


def test_the_login_counter_is_shared_through_redis(asgi_server, settings):
    make_world()
    with httpx.Client(base_url=asgi_server, timeout=10) as http:
        codes = [
            http.post(
                "/api/v1/auth/token/", json={"email": "viewer@acme.test", "password": "wrong"}
            ).status_code
            for _ in range(settings.LOGIN_FAILURE_LIMIT + 1)
        ]
    assert codes[:-1] == [401] * settings.LOGIN_FAILURE_LIMIT
    assert codes[-1] == 429
    # The counter lives in Redis: this test process sees what the server counted.
    from django.core.cache import cache

    from accounts.login_guard import _keys

    assert cache.get(_keys("viewer@acme.test", None)[0]) == settings.LOGIN_FAILURE_LIMIT


def test_the_browser_session_signs_in_over_http(asgi_server):
    make_world()
    with httpx.Client(base_url=asgi_server, timeout=10, follow_redirects=False) as http:
        login = http.get("/login/")
        csrf = http.cookies["csrftoken"]
        signed = http.post(
            "/login/",
            data={"email": "admin@acme.test", "password": PASSWORD, "csrfmiddlewaretoken": csrf},
            headers={"Referer": asgi_server + "/login/"},
        )
        assert login.status_code == 200 and signed.status_code == 302
        members = http.get("/orgs/acme/members/")
        assert members.status_code == 200 and "tester@acme.test" in members.text
