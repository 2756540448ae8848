"""Change approvals on PostgreSQL with a real worker: the last approval queues the
promotion, which runs; two managers giving the last approval at once queue it once."""

import threading

import httpx
import pytest

from agents.models import Agent
from approvals.models import ApprovalRequest
from approvals.tests.helpers import require_approvals
from lifecycle.audit import AuditEvent
from lifecycle.operations import Operation
from tests.factories import PASSWORD, add_component, add_member, make_agent, make_world, skill
from tests.processes import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def token(http, email: str) -> str:
    return http.post("/api/v1/auth/token/", json={"email": email, "password": PASSWORD}).json()["token"]


def ask(http, agent) -> dict:
    response = http.post(
        f"/api/v1/orgs/acme/agents/{agent.pk}/promote/",
        json={"confirm": "accept", "changelog": "Ready for QA.", "acknowledge_editors": True},
        headers={"Authorization": f"Token {token(http, 'tester@acme.test')}"},
    )
    assert response.status_code == 202, response.text
    operation = response.json()["operation"]
    assert operation["status"] == "awaiting_approval"
    return operation


def approve(http, key: str, approval: str) -> httpx.Response:
    return http.post(
        f"/api/v1/orgs/acme/approvals/{approval}/approve/",
        json={"comment": "Evidence read."},
        headers={"Authorization": f"Token {key}"},
    )


def test_the_last_approval_runs_the_promotion_and_a_race_for_it_queues_it_once(asgi_server, worker_factory):
    world = make_world()
    add_member(world.acme, "qa@acme.test", stage_roles={"testing": "manager"})
    require_approvals(world.acme, "testing", 2)
    agent = make_agent(world.acme)
    add_component(agent, "skill", "faq", skill(["faq"], ["See our FAQ."]))
    worker_factory()
    with httpx.Client(base_url=asgi_server, timeout=60) as http:
        operation = ask(http, agent)
        approval = operation["result"]["approval"]
        first = approve(http, token(http, "admin@acme.test"), approval)
        assert first.status_code == 200 and first.json()["status"] == "pending", first.text
        # Nothing runs before the last approval.
        assert Operation.objects.for_org(world.acme).get(pk=operation["id"]).status == "awaiting_approval"
        racers = [token(http, "qa@acme.test"), token(http, "owner@acme.test")]

    barrier = threading.Barrier(len(racers))
    answers: list[httpx.Response] = []
    lock = threading.Lock()

    def racer(key):
        with httpx.Client(base_url=asgi_server, timeout=60) as http:
            barrier.wait()
            response = approve(http, key, approval)
            with lock:
                answers.append(response)

    threads = [threading.Thread(target=racer, args=(key,)) for key in racers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    codes = sorted(r.status_code for r in answers)
    assert codes == [200, 409], [r.text for r in answers]
    assert next(r for r in answers if r.status_code == 200).json()["status"] == "approved"

    wait_for(
        lambda: Operation.objects.for_org(world.acme).get(pk=operation["id"]).is_finished,
        60,
        0.2,
        "promotion",
    )
    done = Operation.objects.for_org(world.acme).get(pk=operation["id"])
    assert done.status == "succeeded", done.error
    assert Agent.objects.for_org(world.acme).filter(stage__slug="testing").count() == 1
    request = ApprovalRequest.objects.for_org(world.acme).get(pk=approval)
    assert request.status == "approved" and request.decisions.count() == 2
    events = AuditEvent.objects.for_org(world.acme)
    assert events.filter(action="approval.approved").count() == 1
    assert events.filter(action="agent.promote").count() == 1
