"""A spent budget on a real uvicorn process with Redis as the cache and PostgreSQL."""

import asyncio
import json
import time
from decimal import Decimal

import httpx
import pytest
import websockets

from accounts.demo import seed_demo_org
from accounts.models import Stage, User
from accounts.services.auth import token_create
from agents.demo import seed_demo_agent
from agents.models import Conversation
from lifecycle.access import access_for
from monitoring.models import Alert
from rollouts.policy import stage_policy_update
from rollouts.services.keys import stage_key_create
from tests.services.conftest import start_asgi

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_budget_is_summed_again_after_the_cache_expires_and_refuses_new_conversations(
    services_env, broker, settings
):
    settings.SPEND_CACHE_SECONDS = 1  # this process caches the state on the policy change too
    org, _ = seed_demo_org()
    agent = seed_demo_agent(org)
    admin = access_for(User.objects.get(email="admin@acme.test"), org)
    development = Stage.objects.for_org(org).get(slug="development")
    _, key = stage_key_create(access=admin, stage=development, name="site")
    _, token = token_create(user=User.objects.get(email="developer@acme.test"), name="ws")
    stage_policy_update(
        access=admin,
        stage=development,
        document={"spending": {"monthly_budget": "1.00", "alert_at": 0.5, "block": ["live", "console"]}},
    )
    proc, base = start_asgi({**services_env, "SPEND_CACHE_SECONDS": "1"})
    try:
        start = f"/api/v1/run/{org.slug}/{agent.lineage.slug}/development/conversations/"
        with httpx.Client(base_url=base, timeout=30, headers={"Authorization": f"Bearer {key}"}) as http:
            first = http.post(start, json={"user": "visitor"})
            assert first.status_code == 201, first.text
            cid = first.json()["conversation"]
            # What a priced model would have recorded; the engine here costs nothing.
            Conversation.objects.for_org(org).filter(pk=cid).update(cost=Decimal("1.20"))
            time.sleep(1.5)  # the cached month-to-date sum expires
            refused = http.post(start, json={"user": "visitor"})
            assert refused.status_code == 402, refused.text
            body = refused.json()["error"]
            assert body["code"] == "budget_exhausted" and body["details"]["spent"] == "1.20"
            said = http.post(f"{start}{cid}/messages/", json={"text": "hello"})
            assert said.status_code == 200, said.text

        async def console():
            url = (
                base.replace("http://", "ws://")
                + f"/ws/orgs/{org.slug}/agents/{agent.pk}/conversation/?token={token}"
            )
            async with websockets.connect(url, open_timeout=30) as socket:
                await socket.send(json.dumps({"type": "user_message", "text": "hello"}))
                return json.loads(await asyncio.wait_for(socket.recv(), timeout=30))

        frame = asyncio.run(console())
        assert (frame["type"], frame["code"]) == ("error", "budget_exhausted"), frame
        alert = Alert.objects.for_org(org).get(resolved_at__isnull=True)
        assert (alert.metric, alert.level, alert.value) == ("spend", "critical", Decimal("1.2"))
        assert Conversation.objects.for_org(org).filter(source="console").count() == 0
    finally:
        proc.stop()
