"""Recording conversations: the raw batched insert must store what the ORM would."""

from decimal import Decimal

import pytest
from django.db import IntegrityError, connection
from django.test.utils import CaptureQueriesContext

from agents.models import Conversation, Turn
from agents.services.conversations import (
    conversation_finish,
    conversation_record,
    conversation_start,
    conversations_record,
)
from tests.factories import make_agent

pytestmark = pytest.mark.django_db


def test_batched_turns_keep_defaults_errors_cost_and_state_and_finish_sums_them(world):
    agent = make_agent(world.acme)
    first = conversation_start(agent=agent, version=1, draft=True, source="console")
    second = conversation_start(agent=agent, version=1, draft=True, source="console")
    conversations_record(
        [
            (first, [{"index": 0, "role": "user", "text": "héllo 🌍"}], None),
            (
                first,
                [
                    {
                        "index": 1,
                        "text": "Hi",
                        "tokens_in": 3,
                        "tokens_out": 5,
                        "cost": 0.000125,
                        "latency_first_ms": 4,
                        "details": {"skill": "greet", "confidence": 0.9},
                        "error": {"code": "tool_failed", "message": "timeout"},
                        "interrupted": True,
                    }
                ],
                {"waiting": "order_id"},
            ),
            (second, [], {"waiting": None}),
        ],
        totals=False,
    )

    user, reply = Turn.objects.for_org(world.acme).filter(conversation=first).order_by("index")
    assert (user.role, user.text, user.details, user.error, user.cost) == ("user", "héllo 🌍", {}, None, 0)
    assert user.latency_first_ms is None and user.interrupted is False and user.created_at is not None
    assert reply.role == "agent" and reply.interrupted is True and reply.latency_first_ms == 4
    assert reply.details == {"skill": "greet", "confidence": 0.9}
    assert reply.error == {"code": "tool_failed", "message": "timeout"}
    assert reply.cost == Decimal("0.000125")
    assert Turn.objects.for_org(world.acme).filter(conversation=second).count() == 0

    stored = {c.pk: c for c in Conversation.objects.for_org(world.acme)}
    assert stored[first.pk].state == {"waiting": "order_id"}
    assert stored[second.pk].state == {"waiting": None}
    assert stored[first.pk].turn_count == 0, "totals wait for the end of the conversation"

    conversation_finish(first)
    done = Conversation.objects.for_org(world.acme).get(pk=first.pk)
    assert (done.turn_count, done.error_count, done.tokens_in, done.tokens_out) == (2, 1, 3, 5)
    assert done.cost == Decimal("0.000125") and done.ended_at is not None


def test_running_totals_are_added_per_conversation(world):
    agent = make_agent(world.acme)
    one = conversation_start(agent=agent, version=1, draft=True, source="console")
    two = conversation_start(agent=agent, version=1, draft=True, source="console")
    conversations_record(
        [
            (one, [{"index": 0, "tokens_in": 2, "cost": "0.5"}], None),
            (two, [{"index": 0, "error": {"code": "x"}}, {"index": 1, "tokens_out": 7}], None),
        ]
    )
    conversations_record([(one, [{"index": 1, "tokens_in": 1}], None)])
    stored = {c.pk: c for c in Conversation.objects.for_org(world.acme)}
    assert (stored[one.pk].turn_count, stored[one.pk].tokens_in, stored[one.pk].cost) == (
        2,
        3,
        Decimal("0.5"),
    )
    assert (stored[two.pk].turn_count, stored[two.pk].error_count, stored[two.pk].tokens_out) == (2, 1, 7)


@pytest.mark.django_db(transaction=True)
def test_recording_outside_a_transaction_adds_turns_and_totals_or_nothing(world):
    """The gateway's path: outside a transaction, on PostgreSQL, one statement."""
    agent = make_agent(world.acme)
    conversation = conversation_start(agent=agent, version=1, draft=False, source="live")
    turns = [
        {"index": 0, "role": "user", "text": "hi"},
        {"index": 1, "text": "Hello", "tokens_out": 2, "cost": 0.5, "error": {"code": "x", "message": "y"}},
    ]
    with CaptureQueriesContext(connection) as queries:
        conversation_record(conversation=conversation, turns=turns, state={"step": 1})
    if connection.vendor == "postgresql":
        assert len(queries) == 1, [q["sql"] for q in queries]
    conversation_record(conversation=conversation, turns=[{"index": 2, "role": "user", "text": "more"}])
    stored = Conversation.objects.for_org(world.acme).get(pk=conversation.pk)
    assert (stored.turn_count, stored.error_count, stored.tokens_out) == (3, 1, 2)
    assert stored.cost == Decimal("0.5") and stored.state == {"step": 1}, "no state given keeps the state"

    with pytest.raises(IntegrityError):  # index 2 again: a concurrent message
        conversation_record(
            conversation=conversation,
            turns=[{"index": 3, "text": "new"}, {"index": 2, "text": "taken"}],
            state={"step": 2},
        )
    stored.refresh_from_db()
    assert (stored.turn_count, stored.state) == (3, {"step": 1})
    texts = Turn.objects.for_org(world.acme).filter(conversation=conversation).order_by("index")
    assert [t.text for t in texts] == ["hi", "Hello", "more"]
