"""The live safety sample on real parts: uvicorn records the message, a Celery worker scores it."""

import httpx
import pytest

from accounts.demo import seed_demo_org
from accounts.models import Stage, User
from agents.demo import seed_demo_agent
from lifecycle.access import access_for
from rollouts.models import LiveSafety
from rollouts.services.keys import stage_key_create
from tests.processes import wait_for

from .conftest import start_asgi

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def test_sampled_live_answers_are_scored_by_the_worker(services_env, worker_factory):
    org, _ = seed_demo_org()
    agent = seed_demo_agent(org)
    stage = Stage.objects.for_org(org).get(slug="development")
    _, key = stage_key_create(
        access=access_for(User.objects.get(email="admin@acme.test"), org), stage=stage, name="site"
    )
    worker_factory()
    proc, base = start_asgi({**services_env, "SAFETY_LIVE_SAMPLE_RATE": "1"})
    try:
        path = f"/api/v1/run/{org.slug}/{agent.lineage.slug}/development/conversations/"
        with httpx.Client(base_url=base, timeout=30, headers={"Authorization": f"Bearer {key}"}) as http:
            cid = http.post(path, json={"user": "visitor-1"}).json()["conversation"]
            for text in ("hello", "Where is order 555?"):
                assert http.post(f"{path}{cid}/messages/", json={"text": text}).status_code == 200
    finally:
        proc.stop()

    def scored():
        row = LiveSafety.objects.for_org(org).filter(agent=agent).first()
        return row is not None and row.scored == 2

    wait_for(scored, 60, 0.2, "the worker to score the sampled answers")
    row = LiveSafety.objects.for_org(org).get(agent=agent)
    assert row.version == agent.live_version or row.version == agent.version
    assert row.rates() == {"violence": 0.0, "sexual": 0.0, "self_harm": 0.0, "hate": 0.0}
