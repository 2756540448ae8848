"""Webhooks on a real worker through Redis, delivering to a real server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from django.db import transaction

from tests.factories import make_org, owner_access
from tests.http_servers import Recorder
from tests.processes import wait_for
from webhooks import events as events_module
from webhooks.events import event_emit
from webhooks.models import Delivery, DeliveryAttempt
from webhooks.services.webhooks import webhook_create
from webhooks.tasks import sweep

pytestmark = pytest.mark.django_db(transaction=True)
SECRET = "services-secret-0123456789"


def test_a_real_worker_delivers_signed_and_retries_a_500(worker_factory):
    answers = iter([500])

    def once_500_then_ok(recorder, request):
        return next(answers, 200), {}, 0

    org = make_org()
    with Recorder(once_500_then_ok) as server:
        webhook_create(access=owner_access(org), url=server.url + "/hook", events=["pull.*"], secret=SECRET)
        worker_factory(WEBHOOK_RETRY_BASE_SECONDS="0.5")
        with transaction.atomic():
            event_emit(org=org, event="pull.succeeded", data={"agent_name": "Bot"})
        wait_for(
            lambda: Delivery.objects.for_org(org).filter(status=Delivery.SUCCEEDED).exists(),
            60,
            0.2,
            "delivery",
        )
        assert len(server.requests) == 2
        last = server.requests[-1]
    headers = {k.lower(): v for k, v in last["headers"].items()}
    expected = hmac.new(SECRET.encode(), last["raw"], hashlib.sha256).hexdigest()
    assert headers["x-lifecycle-signature"] == f"sha256={expected}"
    assert last["body"]["event"] == "pull.succeeded" and last["body"]["data"] == {"agent_name": "Bot"}
    attempts = list(DeliveryAttempt.objects.for_org(org).order_by("number"))
    assert [(a.number, a.status_code) for a in attempts] == [(1, 500), (2, 200)]
    assert attempts[0].next_retry_at is not None


def test_an_event_whose_enqueue_was_lost_is_delivered_by_the_sweep(worker_factory, monkeypatch):
    org = make_org()
    with Recorder(lambda r, q: (200, {}, 0)) as server:
        webhook_create(access=owner_access(org), url=server.url, events=["*"], secret=SECRET)
        worker_factory(WEBHOOK_SWEEP_GRACE_SECONDS="0")
        # The change commits, and the process dies before its on-commit enqueue.
        with monkeypatch.context() as patched:
            patched.setattr(events_module, "_enqueue_on_commit", lambda org_id, ids: None)
            with transaction.atomic():
                event_emit(org=org, event="soak.finished", data={})
        assert Delivery.objects.for_org(org).get().status == Delivery.PENDING
        sweep.delay()  # what beat sends every WEBHOOK_SWEEP_SECONDS
        wait_for(lambda: len(server.requests) == 1, 60, 0.2, "swept delivery")
        assert server.requests[0]["body"]["event"] == "soak.finished"
    wait_for(
        lambda: Delivery.objects.for_org(org).get().status == Delivery.SUCCEEDED, 30, 0.2, "delivery recorded"
    )
