"""A canary on the real thing: traffic through the ASGI server, verdicts from a real beat
and worker, routing invalidated across processes through Redis."""

import time

import httpx
import pytest

from accounts.models import Stage
from agents.models import Component, Conversation
from agents.services.components import component_update
from agents.services.versions import version_save
from rollouts.models import Release, ReleaseVerdict
from rollouts.policy import stage_policy_update
from rollouts.services.keys import stage_key_create
from rollouts.services.release import release_create
from tests.factories import add_component, make_agent, make_world, owner_access, skill
from tests.http_servers import Recorder
from tests.services.conftest import BIN, Proc

pytestmark = pytest.mark.django_db(transaction=True)
INTERVAL = 5
MIN_SAMPLES = 6


def tool(url: str) -> dict:
    return {"description": "d", "parameters": {"type": "object", "properties": {}}, "webhook_url": url}


@pytest.fixture
def beat(services_env, tmp_path):
    """A real Celery beat, ticking the release sweep every second."""
    proc = Proc(
        "beat",
        [str(BIN / "celery"), "-A", "lifecycle", "beat", "-s", str(tmp_path / "schedule"), "--loglevel=INFO"],
        {**services_env, "RELEASE_TICK_SECONDS": "1"},
    ).start()
    yield proc
    proc.stop()


def test_a_canary_whose_tool_starts_failing_is_rolled_back_on_its_own(asgi_server, worker_factory, beat):
    world = make_world()
    owner = owner_access(world.acme)

    # /ok answers; /broken is the new version's endpoint, and it answers 500.
    def handler(recorder, request):
        return (500, {"error": "down"}, 0) if request["path"] == "/broken" else (200, {"state": "shipped"}, 0)

    with Recorder(handler) as server:
        agent = make_agent(world.acme, "Canaried")
        add_component(agent, "tool", "lookup", tool(server.url + "/ok"))
        add_component(
            agent, "skill", "status", skill(["order status"], ["It is {{tool.state}}."], tool="lookup")
        )
        version_save(access=owner, agent=agent, changelog="working tool")
        agent.refresh_from_db()
        stable = agent.live_version
        development = Stage.objects.for_org(world.acme).get(slug="development")
        stage_policy_update(access=owner, stage=development, document={"releases": {"required": True}})
        lookup = Component.objects.for_org(world.acme).get(agent=agent, name="lookup")
        component_update(access=owner, component=lookup, spec=tool(server.url + "/broken"))
        candidate = version_save(access=owner, agent=agent, changelog="new endpoint").number
        _, key = stage_key_create(access=owner, stage=development, name="load")
        worker_factory(LIFECYCLE_OUTBOUND_ALLOWED_HOSTS="127.0.0.1")
        release = release_create(
            access=owner,
            agent=agent,
            version=candidate,
            changelog="Canary of the new endpoint",
            strategy="canary",
            steps=[{"weight": 50, "hold": "1h"}, {"weight": 100}],
            analysis={
                "interval": f"{INTERVAL}s",
                "min_samples": MIN_SAMPLES,
                "max_error_rate_increase": 0.2,
                "inconclusive_limit": 50,
            },
        )
        base = f"/api/v1/run/acme/{agent.lineage.slug}/development/conversations/"
        seen = {stable: 0, candidate: 0}
        enough_at = None
        with httpx.Client(
            base_url=asgi_server, timeout=10, headers={"Authorization": f"Bearer {key}"}
        ) as http:

            def converse(i: int) -> int:
                started = http.post(base, json={"user": f"shopper-{i}"})
                assert started.status_code == 201, started.text
                body = started.json()
                said = http.post(f"{base}{body['conversation']}/messages/", json={"text": "order status"})
                assert said.status_code == 200, said.text
                return body["version"]

            i = 0
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                status = Release.objects.for_org(world.acme).get(pk=release.pk).status
                if status != "progressing":
                    break
                seen[converse(i)] += 1
                i += 1
                if enough_at is None and min(seen.values()) >= MIN_SAMPLES:
                    enough_at = time.monotonic()
                time.sleep(0.05)
            rolled = Release.objects.for_org(world.acme).get(pk=release.pk)
            assert rolled.status == "rolled_back", (rolled.status, seen, beat.log_tail())
            assert enough_at is not None and seen[candidate] >= MIN_SAMPLES
            # Once both arms had their samples: at most two intervals and a tick or two.
            assert time.monotonic() - enough_at <= 2 * INTERVAL + 3, time.monotonic() - enough_at
            verdict = ReleaseVerdict.objects.for_org(world.acme).filter(release=release, verdict="fail").get()
            assert verdict.action == "rolled_back" and verdict.metrics["error_rate"]["result"] == "fail"
            # (a conversation may be counted between its start and its first answer)
            assert (
                verdict.metrics["error_rate"]["stable"] == 0
                and verdict.metrics["error_rate"]["candidate"] > 0.8
            )
            # After the verdict, no new conversation lands on the candidate: the server
            # process saw the change through the shared cache.
            after = [converse(10_000 + n) for n in range(30)]
        assert set(after) == {stable}
        late = Conversation.objects.for_org(world.acme).filter(
            agent=agent, source="live", version=candidate, started_at__gt=rolled.finished_at
        )
        assert late.count() == 0
