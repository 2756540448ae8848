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


def _token(http) -> dict:
    issued = http.post("/api/v1/auth/token/", json={"email": "admin@acme.test", "password": PASSWORD})
    assert issued.status_code == 201, issued.text
    return {"Authorization": f"Token {issued.json()['token']}"}


def test_a_chunked_patch_is_applied(asgi_server):
    from tests.factories import make_agent

    world = make_world()
    agent = make_agent(world.acme, "Chunked")
    with httpx.Client(base_url=asgi_server, timeout=10) as http:
        headers = {**_token(http), "Content-Type": "application/json"}

        def body():  # a generator body: httpx sends it chunked, with no Content-Length
            yield b'{"description": '
            yield b'"sent in chunks"}'

        url = f"/api/v1/orgs/acme/agents/{agent.pk}/"
        patched = http.patch(url, content=body(), headers=headers)
        assert patched.status_code == 200, patched.text
        assert http.get(url, headers=headers).json()["description"] == "sent in chunks"


def _raw_chunked_post(base: str, path: str, chunks, stop_after: int) -> bytes:
    """Send a chunked request on a raw socket, chunk by chunk, until `stop_after` bytes
    of body are sent or the server answers; then, without ending the body, wait for the
    answer. A server that waits for the whole body never answers (a timeout here)."""
    import select
    import socket
    from urllib.parse import urlsplit

    url = urlsplit(base)
    sock = socket.create_connection((url.hostname, url.port), timeout=10)
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n".encode()
    )
    sent = 0
    answer = b""
    try:
        for chunk in chunks:
            # Stop writing as soon as there is an answer: writing on to a socket the
            # server has closed makes it reset the connection, and the answer is lost.
            if sent >= stop_after or select.select([sock], [], [], 0)[0]:
                break
            sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            sent += len(chunk)
        while b"\r\n\r\n" not in answer or not answer.split(b"\r\n\r\n", 1)[1]:
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    except (BrokenPipeError, ConnectionResetError):
        pass
    finally:
        sock.close()
    return answer


def test_a_chunked_body_is_cut_off_at_the_limit(asgi_server, settings):
    make_world()
    limit = settings.API_MAX_BODY_BYTES
    chunk = b" " * 65536
    # Past the limit by a few chunks, and the body never ends: only a server that stops
    # reading at the limit answers at all.
    answer = _raw_chunked_post(
        asgi_server, "/api/v1/auth/token/", iter(lambda: chunk, None), stop_after=limit + 4 * len(chunk)
    )
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), answer[:300]
    assert b'"too_large"' in body


def test_a_declared_length_over_the_limit_is_refused_before_reading(asgi_server, settings):
    limit = settings.API_MAX_BODY_BYTES
    with httpx.Client(base_url=asgi_server, timeout=10) as http:
        response = http.post(
            "/api/v1/auth/token/",
            content=b"{" + b" " * limit + b"}",
            headers={"Content-Type": "application/json"},
        )
    assert response.status_code == 413 and response.json()["error"]["code"] == "too_large"


def test_a_chunked_import_gets_the_import_limit(asgi_server, settings):
    make_world()
    with httpx.Client(base_url=asgi_server, timeout=30) as http:
        headers = {**_token(http), "Content-Type": "application/json"}
        padding = b" " * (settings.API_MAX_BODY_BYTES + 1024)  # over the ordinary limit only

        def body():
            yield b'{"format": 1, "agent": {"name": "Imported in chunks"}, "components": []'
            yield padding
            yield b"}"

        imported = http.post("/api/v1/orgs/acme/agents/import/", content=body(), headers=headers)
    assert imported.status_code != 413, imported.text
    assert imported.status_code < 500, imported.text


def test_a_nul_in_a_slug_path_is_not_a_500(asgi_server):
    make_world()
    with httpx.Client(base_url=asgi_server, timeout=10) as http:
        headers = _token(http)
        api = http.get("/api/v1/orgs/a%00b/", headers=headers)
        page = http.get("/orgs/a%00b/")
    assert api.status_code in (400, 404) and api.json()["error"]["code"] in ("invalid", "not_found")
    assert page.status_code in (302, 400, 404)


def test_the_real_access_log_never_shows_a_token(services_env):
    from tests.processes import free_port, wait_for
    from tests.services.conftest import BIN, Proc

    port = free_port()
    proc = Proc(
        f"asgi-access-log-{port}",
        [str(BIN / "uvicorn"), "lifecycle.asgi:application", "--host", "127.0.0.1", "--port", str(port)],
        services_env,
    ).start()
    base = f"http://127.0.0.1:{port}"
    secret = "lc_accesslogsecret987"
    try:

        def up():
            try:
                return httpx.get(f"{base}/login/?token={secret}&next=/", timeout=1).status_code == 200
            except httpx.HTTPError:
                return proc.process.poll() is not None

        wait_for(up, 60, 0.2, "ASGI server")
        wait_for(lambda: "GET /login/?token=" in proc.log_tail(50), 10, 0.1, "the access log line")
        log = proc.log_tail(200)
    finally:
        proc.stop()
    assert "GET /login/?token=[redacted]&next=/" in log, log
    assert secret not in log
