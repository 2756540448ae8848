"""Writes conditional on what the client saw: check and write are one step (PostgreSQL)."""

import threading
import time

import httpx
import pytest
from django.db import connection, transaction

from agents.models import Agent, Component
from tests.factories import PASSWORD, add_component, make_agent, make_world, skill

from .conftest import start_asgi

pytestmark = pytest.mark.django_db(transaction=True)


def _waiting_on_locks() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        return cursor.fetchone()[0]


@pytest.fixture(scope="module")
def second_server(services_env, asgi_server):
    """A second server process: both requests pass the early If-Match check before either writes."""
    proc, base = start_asgi(services_env)
    yield base
    proc.stop()


def component_case(world):
    agent = make_agent(world.acme, "Race")
    component = add_component(agent, "skill", "greet", skill())
    url = f"/api/v1/orgs/acme/agents/{agent.pk}/components/{component.uid}/"

    def lock():
        Component.objects.for_org(world.acme).select_for_update().get(pk=component.pk)

    def body(text):
        return {"spec": skill(["hello"], [text])}

    def stored():
        return Component.objects.for_org(world.acme).get(pk=component.pk).spec["responses"][0]

    return url, lock, body, stored


def agent_case(world):
    agent = make_agent(world.acme, "Race")
    url = f"/api/v1/orgs/acme/agents/{agent.pk}/"

    def lock():
        Agent.objects.for_org(world.acme).select_for_update().get(pk=agent.pk)

    def body(text):
        return {"description": text}

    def stored():
        return Agent.objects.for_org(world.acme).get(pk=agent.pk).description

    return url, lock, body, stored


@pytest.mark.parametrize("case", [component_case, agent_case], ids=["component", "agent"])
def test_two_patches_with_one_if_match_at_once_one_200_one_412(asgi_server, second_server, case):
    world = make_world()
    url, lock, body, stored = case(world)
    with httpx.Client(base_url=asgi_server, timeout=30) as http:
        issued = http.post("/api/v1/auth/token/", json={"email": "admin@acme.test", "password": PASSWORD})
        headers = {"Authorization": f"Token {issued.json()['token']}"}
        etag = http.get(url, headers=headers).headers["ETag"]
    with httpx.Client(base_url=second_server, timeout=60) as http:
        # A cold process answers its first request slowly; warm it so both race.
        assert http.get(url, headers=headers).headers["ETag"] == etag
    results: dict = {}

    def patch(base, text):
        with httpx.Client(base_url=base, timeout=30) as http:
            results[text] = http.patch(url, json=body(text), headers={**headers, "If-Match": etag})

    threads = [
        threading.Thread(target=patch, args=(asgi_server, "From the first tab.")),
        threading.Thread(target=patch, args=(second_server, "From the second tab.")),
    ]
    # The row is held locked here until both writes wait on it: both have passed the
    # early check, so only the check made on the locked row can refuse one of them.
    with transaction.atomic():
        lock()
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 60
        while _waiting_on_locks() < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        waiting = _waiting_on_locks()
    for thread in threads:
        thread.join(30)
    answers = {text: (r.status_code, r.text[:300]) for text, r in results.items()}
    assert waiting == 2, answers
    assert sorted(code for code, _ in answers.values()) == [200, 412], answers
    winner = next(text for text, r in results.items() if r.status_code == 200)
    loser = next(r for r in results.values() if r.status_code == 412)
    assert loser.json()["error"]["code"] == "precondition_failed"
    assert stored() == winner


def test_a_patch_and_a_delete_with_one_if_match_at_once_only_one_applies(asgi_server, second_server):
    world = make_world()
    agent = make_agent(world.acme, "Race")
    component = add_component(agent, "skill", "greet", skill())
    url = f"/api/v1/orgs/acme/agents/{agent.pk}/components/{component.uid}/"
    with httpx.Client(base_url=asgi_server, timeout=30) as http:
        issued = http.post("/api/v1/auth/token/", json={"email": "admin@acme.test", "password": PASSWORD})
        headers = {"Authorization": f"Token {issued.json()['token']}"}
        etag = http.get(url, headers=headers).headers["ETag"]
    with httpx.Client(base_url=second_server, timeout=60) as http:
        assert http.get(url, headers=headers).headers["ETag"] == etag
    results: dict = {}

    def send(base, method):
        with httpx.Client(base_url=base, timeout=30) as http:
            kwargs = {"json": {"spec": skill(["hello"], ["Edited."])}} if method == "PATCH" else {}
            results[method] = http.request(method, url, headers={**headers, "If-Match": etag}, **kwargs)

    threads = [
        threading.Thread(target=send, args=(asgi_server, "PATCH")),
        threading.Thread(target=send, args=(second_server, "DELETE")),
    ]
    with transaction.atomic():
        Component.objects.for_org(world.acme).select_for_update().get(pk=component.pk)
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 60
        while _waiting_on_locks() < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        waiting = _waiting_on_locks()
    for thread in threads:
        thread.join(30)
    answers = {method: (r.status_code, r.text[:300]) for method, r in results.items()}
    assert waiting == 2, answers
    # Whichever came second is refused: 412 (changed), or 404 for a PATCH of what is gone.
    assert (answers["PATCH"][0], answers["DELETE"][0]) in ((200, 412), (412, 204), (404, 204)), answers
    exists = Component.objects.for_org(world.acme).filter(pk=component.pk).exists()
    assert exists == (results["PATCH"].status_code == 200)
