"""The browser tier: Playwright driving Debian's Chromium against the real stack.

The server is what `make run` starts (uvicorn + a Celery worker with beat on the
embedded SQLite and filesystem broker), in a scratch var/ directory with the demo data.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from tests.processes import free_port

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ARTIFACTS = Path(os.environ.get("LIFECYCLE_TEST_ARTIFACTS", ROOT / "var" / "test-artifacts"))
DEMO_PASSWORD = "lifecycle-demo"


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/browser/" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def django_db_setup():
    """The browser tier talks to its own server process; it needs no test database."""


@pytest.fixture(scope="session")
def stack():
    var = Path(tempfile.mkdtemp(prefix="lifecycle-browser-"))
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in (
            "DATABASE_URL",
            "REDIS_URL",
            "CACHE_URL",
            "DJANGO_SETTINGS_MODULE",
            "CELERY_TASK_ALWAYS_EAGER",
        )
    }
    env.update(
        LIFECYCLE_VAR_DIR=str(var),
        DJANGO_SETTINGS_MODULE="lifecycle.settings",
        LIFECYCLE_OUTBOUND_ALLOWED_HOSTS="127.0.0.1,localhost",
        PYTHONUNBUFFERED="1",
        ACCESS_LOG="0",
    )
    for command in (["migrate", "--noinput", "-v0"], ["seed_demo"]):
        subprocess.run([PYTHON, "manage.py", *command], cwd=ROOT, env=env, check=True, capture_output=True)
    port = free_port()
    log = open(var / "server.log", "wb")  # noqa: SIM115
    server = subprocess.Popen(
        [PYTHON, "manage.py", "run", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/login/", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert server.poll() is None, (var / "server.log").read_text()
        time.sleep(0.2)
    else:
        raise AssertionError("the server did not come up: " + (var / "server.log").read_text()[-3000:])
    if os.environ.get("LIFECYCLE_TEST_DEMO_FROZEN") == "1":
        # Run the whole tier as on a Friday afternoon: the demo's Production is frozen now.
        freeze_production_now(base)
    yield {"base": base, "env": env, "var": var}
    os.killpg(server.pid, signal.SIGINT)
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
    shutil.rmtree(var, ignore_errors=True)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, stack, request):
    context = browser.new_context(base_url=stack["base"], viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.set_default_timeout(15000)
    yield page
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()


def sign_in(page, email: str, password: str = DEMO_PASSWORD) -> None:
    page.goto("/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/orgs/**")


# --- the demo's freeze ----------------------------------------------------------------
# The demo's Production is frozen from Friday 12:00 to Monday 08:00 (Europe/Berlin), and
# this tier runs on any day. A test that changes Production asks for `production_unfrozen`;
# LIFECYCLE_TEST_DEMO_FROZEN=1 freezes Production for the whole run, to prove they do.
POLICY = "/api/v1/orgs/acme/stages/production/policy/"


@contextlib.contextmanager
def admin_api(base: str):
    """An API client signed in as the demo's admin."""
    with httpx.Client(base_url=base, timeout=30) as http:
        token = http.post("/api/v1/auth/token/", json={"email": "admin@acme.test", "password": DEMO_PASSWORD})
        http.headers["Authorization"] = f"Token {token.json()['token']}"
        yield http


def set_production_windows(base: str, windows: list[dict]) -> list[dict]:
    """Replace Production's freeze windows (the rest of its policy kept); the old ones."""
    with admin_api(base) as http:
        document = http.get(POLICY).json()
        saved = http.put(POLICY, json={**document, "freeze_windows": windows})
        assert saved.status_code == 200, saved.text
        return document["freeze_windows"]


def freeze_production_now(base: str, reason: str = "browser tests run inside a freeze") -> None:
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    with admin_api(base) as http:
        windows = http.get(POLICY).json()["freeze_windows"]
    window = {
        "id": "now",
        "kind": "once",
        "starts_at": (now - timedelta(hours=1)).isoformat(),
        "ends_at": (now + timedelta(hours=6)).isoformat(),
        "reason": reason,
    }
    set_production_windows(base, [*[w for w in windows if w["id"] != "now"], window])
    with admin_api(base) as http:  # the decision itself now says frozen
        agent = http.get("/api/v1/orgs/acme/agents/").json()["results"][0]["id"]
        preview = http.get(f"/api/v1/orgs/acme/agents/{agent}/gate/", params={"target": "production"})
        assert preview.json()["frozen"]["reason"] == reason, preview.text


@pytest.fixture
def production_unfrozen(stack):
    """Production without freeze windows for this test, whatever the day; restored after."""
    before = set_production_windows(stack["base"], [])
    yield
    set_production_windows(stack["base"], before)
