"""The event outbox and deliveries, against real HTTP servers on 127.0.0.1."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket

import pytest
from django.db import transaction

from tests.factories import owner_access
from tests.http_servers import Recorder
from webhooks.events import EVENTS, event_emit, matches, pattern_valid
from webhooks.models import Delivery, DeliveryAttempt, OutboxEvent
from webhooks.services.delivery import delivery_sweep, retry_delay
from webhooks.services.webhooks import webhook_create

SECRET = "s3cret-signing-key-0123456789"


def ok(recorder, request):
    return 200, {"ok": True}, 0


def always(status):
    return lambda recorder, request: (status, {"error": "nope"}, 0)


def hook(org, url, events=("promotion.*",), **kwargs):
    kwargs.setdefault("secret", SECRET)
    return webhook_create(access=owner_access(org), url=url, events=list(events), **kwargs)


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


def test_patterns():
    assert pattern_valid("*") and pattern_valid("promotion.*") and pattern_valid("gate.failed")
    assert not pattern_valid("promotion.exploded") and not pattern_valid("nope.*") and not pattern_valid("")
    assert matches(["promotion.*"], "promotion.failed")
    assert not matches(["promotion.*"], "pull.failed")
    assert matches(["*"], "alert.opened") and matches(["pull.failed"], "pull.failed")
    # A ping goes only where it is asked for, never by pattern.
    assert not matches(["*"], "ping")


def test_unknown_event_is_a_programming_error(world):
    with pytest.raises(ValueError):
        event_emit(org=world.acme, event="promotion.exploded", data={})
    with pytest.raises(ValueError):
        event_emit(org=world.acme, event="promotion.succeeded", data=["not", "a", "dict"])
    assert OutboxEvent.objects.for_org(world.acme).count() == 0


def test_delivered_signed_to_matching_webhooks_only(world, on_commit):
    with Recorder(ok) as server, Recorder(ok) as other:
        webhook = hook(world.acme, server.url + "/hook")
        hook(world.acme, other.url + "/other", events=["pull.*"])
        disabled = hook(world.acme, other.url + "/disabled", events=["*"], enabled=False)
        hook(world.globex, other.url + "/globex", events=["*"])

        on_commit(event_emit, org=world.acme, event="promotion.succeeded", data={"agent_name": "Bot"})

        assert other.requests == []
        [request] = server.requests
        event = OutboxEvent.objects.for_org(world.acme).get()
        delivery = Delivery.objects.for_org(world.acme).get()
        assert delivery.webhook == webhook and delivery.status == Delivery.SUCCEEDED
        body = request["body"]
        assert body == {
            "id": str(event.pk),
            "event": "promotion.succeeded",
            "org": "acme",
            "created_at": body["created_at"],
            "data": {"agent_name": "Bot"},
        }
        headers = {k.lower(): v for k, v in request["headers"].items()}
        assert headers["x-lifecycle-event"] == "promotion.succeeded"
        assert headers["x-lifecycle-delivery"] == str(delivery.pk)
        expected = hmac.new(SECRET.encode(), request["raw"], hashlib.sha256).hexdigest()
        assert headers["x-lifecycle-signature"] == f"sha256={expected}"
        [attempt] = DeliveryAttempt.objects.for_org(world.acme)
        assert attempt.number == 1 and attempt.status_code == 200 and attempt.succeeded
        assert not Delivery.objects.for_org(world.acme).filter(webhook=disabled).exists()


def test_event_is_rolled_back_with_the_change(world, on_commit):
    with Recorder(ok) as server:
        hook(world.acme, server.url, events=["*"])

        def change_then_crash():
            with transaction.atomic():
                event_emit(org=world.acme, event="pull.failed", data={})
                raise RuntimeError("the change failed")

        with pytest.raises(RuntimeError):
            on_commit(change_then_crash)
        assert server.requests == []
        assert OutboxEvent.objects.for_org(world.acme).count() == 0


def test_crash_between_commit_and_enqueue_loses_nothing(world):
    with Recorder(ok) as server:
        hook(world.acme, server.url, events=["*"])
        # The change commits, but its on-commit enqueue never runs (the process died).
        event_emit(org=world.acme, event="release.started", data={"agent": "x"})
        assert server.requests == []
        assert delivery_sweep(grace_seconds=0) == 1
        [request] = server.requests
        assert request["body"]["event"] == "release.started"
        assert Delivery.objects.for_org(world.acme).get().status == Delivery.SUCCEEDED
        # Nothing left to sweep, so nothing is sent twice.
        assert delivery_sweep(grace_seconds=0) == 0
        assert len(server.requests) == 1


def test_sweep_waits_for_the_grace_period(world, settings):
    settings.WEBHOOK_SWEEP_GRACE_SECONDS = 3600
    with Recorder(ok) as server:
        hook(world.acme, server.url, events=["*"])
        event_emit(org=world.acme, event="release.started", data={})
        assert delivery_sweep() == 0
        assert server.requests == []


def test_retries_on_500_with_backoff_then_gives_up(world, on_commit, settings):
    settings.WEBHOOK_RETRY_BASE_SECONDS = 2
    settings.WEBHOOK_MAX_ATTEMPTS = 5
    with Recorder(always(500)) as server:
        hook(world.acme, server.url, events=["gate.failed"])
        on_commit(event_emit, org=world.acme, event="gate.failed", data={"reason": "eval"})
        assert len(server.requests) == 5
    delivery = Delivery.objects.for_org(world.acme).get()
    assert delivery.status == Delivery.FAILED and delivery.attempts == 5
    assert delivery.last_status_code == 500
    attempts = list(DeliveryAttempt.objects.for_org(world.acme).order_by("number"))
    assert [a.number for a in attempts] == [1, 2, 3, 4, 5]
    assert all(a.status_code == 500 and a.error == "HTTP 500" and not a.succeeded for a in attempts)
    # The backoff doubles: 2, 4, 8, 16 s after each failed attempt; none after the last.
    gaps = [(a.next_retry_at - a.started_at).total_seconds() for a in attempts[:-1]]
    assert [round(g) for g in gaps] == [2, 4, 8, 16]
    assert attempts[-1].next_retry_at is None
    # All attempts of one event carry the same event id: receivers dedupe by it.
    assert len({r["body"]["id"] for r in server.requests}) == 1


def test_default_backoff_first_retry_within_10_seconds():
    assert retry_delay(1) <= 10
    assert retry_delay(2) == 2 * retry_delay(1)


def test_retries_until_the_receiver_recovers(world, on_commit):
    answers = iter([503, 500, 200])

    def flaky(recorder, request):
        return next(answers), {}, 0

    with Recorder(flaky) as server:
        hook(world.acme, server.url, events=["soak.finished"])
        on_commit(event_emit, org=world.acme, event="soak.finished", data={})
        assert len(server.requests) == 3
    delivery = Delivery.objects.for_org(world.acme).get()
    assert delivery.status == Delivery.SUCCEEDED and delivery.attempts == 3
    codes = list(
        DeliveryAttempt.objects.for_org(world.acme).order_by("number").values_list("status_code", flat=True)
    )
    assert codes == [503, 500, 200]


def test_retries_on_a_closed_port(world, on_commit, settings):
    settings.WEBHOOK_MAX_ATTEMPTS = 5
    hook(world.acme, closed_port_url(), events=["*"])
    on_commit(event_emit, org=world.acme, event="pull.succeeded", data={})
    delivery = Delivery.objects.for_org(world.acme).get()
    assert delivery.status == Delivery.FAILED and delivery.attempts == 5
    attempts = list(DeliveryAttempt.objects.for_org(world.acme))
    assert len(attempts) == 5
    assert all(a.status_code is None and "ConnectError" in a.error for a in attempts)


def test_a_stale_copy_of_a_message_sends_nothing(world, on_commit):
    from webhooks.services.delivery import delivery_attempt

    with Recorder(ok) as server:
        hook(world.acme, server.url, events=["*"])
        on_commit(event_emit, org=world.acme, event="pull.succeeded", data={})
        delivery = Delivery.objects.for_org(world.acme).get()
        delivery_attempt(org_id=world.acme.pk, delivery_id=delivery.pk, attempt=1)
        delivery_attempt(org_id=world.acme.pk, delivery_id=delivery.pk, attempt=2)
        # Another org's id never reaches the row.
        delivery_attempt(org_id=world.globex.pk, delivery_id=delivery.pk, attempt=2)
        assert len(server.requests) == 1


def test_secret_looking_data_is_masked(world, on_commit):
    with Recorder(ok) as server:
        hook(world.acme, server.url, events=["*"])
        on_commit(
            event_emit,
            org=world.acme,
            event="pull.failed",
            data={"api_key": "sk-live-123", "nested": {"password": "hunter2"}, "agent_name": "Bot"},
        )
        raw = server.requests[0]["raw"].decode()
    assert "sk-live-123" not in raw and "hunter2" not in raw
    assert json.loads(raw)["data"]["agent_name"] == "Bot"


def test_slack_format(world, on_commit):
    with Recorder(ok) as server:
        hook(world.acme, server.url, events=["promotion.*"], format="slack", secret=None)
        on_commit(
            event_emit,
            org=world.acme,
            event="promotion.succeeded",
            data={
                "agent": "0b7c8a44-6a55-4d0c-9a4e-0f2f4b1f0c11",
                "agent_name": "Support <bot>",
                "from_stage": "testing",
                "to_stage": "staging",
                "version": 3,
            },
        )
        [request] = server.requests
    text = request["body"]["text"]
    assert set(request["body"]) == {"text"}
    assert text.startswith("*Promotion succeeded* for <http://localhost:8000/orgs/acme/agents/")
    assert "|Support &lt;bot&gt;>" in text
    assert "from testing to staging (version 3)" in text
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert "x-lifecycle-signature" not in headers


def test_every_documented_event_is_known():
    assert len(EVENTS) == len(set(EVENTS)) == 25


def test_old_finished_events_are_purged_pending_ones_kept(world, on_commit):
    from datetime import timedelta

    from django.utils import timezone

    from webhooks.services.delivery import outbox_purge

    with Recorder(ok) as server:
        hook(world.acme, server.url, events=["*"])
        on_commit(event_emit, org=world.acme, event="pull.succeeded", data={})
    hook(world.acme, closed_port_url(), events=["*"])
    event_emit(org=world.acme, event="pull.failed", data={})  # its delivery stays pending
    old = timezone.now() - timedelta(days=400)
    OutboxEvent.objects.for_org(world.acme).update(created_at=old)
    assert outbox_purge() == 1
    [kept] = OutboxEvent.objects.for_org(world.acme)
    assert kept.event == "pull.failed"
    assert DeliveryAttempt.objects.for_org(world.acme).count() == 0


def test_slack_text_of_a_gate_failure_names_the_failed_checks():
    from webhooks.slack import slack_text

    text = slack_text(
        {
            "event": "gate.failed",
            "org": "acme",
            "data": {
                "agent_name": "Bot",
                "target_stage": "staging",
                "failed_checks": [{"name": "min_accuracy"}],
            },
        }
    )
    assert text.startswith("*Gate failed* for Bot in staging: failed min_accuracy")
