"""Recording conversations: the console, test runs, soak tests and live traffic alike."""

from __future__ import annotations

import json
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Case, Count, DecimalField, F, JSONField, Q, Sum, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from lifecycle.errors import Conflict, Invalid

from ..models import Agent, Conversation, Turn
from ..versioning import db_id


def conversation_start(
    *,
    agent: Agent,
    version: int,
    draft: bool,
    source: str,
    started_by=None,
    end_user: str = "",
    variables: dict | None = None,
    overrides: dict | None = None,
    conversation_id=None,
) -> Conversation:
    ids = {"id": conversation_id} if conversation_id is not None else {}
    return Conversation.objects.create(
        **ids,
        org_id=agent.org_id,
        agent=agent,
        stage_id=agent.stage_id,
        version=version,
        draft=draft,
        source=source,
        started_by=started_by if getattr(started_by, "is_authenticated", False) else None,
        end_user=end_user[:200],
        variables=variables or {},
        overrides=overrides or {},
    )


def conversation_record(*, conversation: Conversation, turns: list[dict], state: dict | None = None) -> None:
    """Append turns to one conversation and add their usage to its totals.

    A duplicate turn number (a concurrent message) raises IntegrityError, with nothing
    written.
    """
    if turns and connection.vendor == "postgresql" and not connection.in_atomic_block:
        _record_in_one_statement(conversation, turns, state)
    else:
        conversations_record([(conversation, turns, state)])


COUNTERS = {
    "turn_count": lambda turns: len(turns),
    "error_count": lambda turns: sum(1 for t in turns if t.get("error")),
    "tokens_in": lambda turns: sum(t.get("tokens_in", 0) for t in turns),
    "tokens_out": lambda turns: sum(t.get("tokens_out", 0) for t in turns),
    "cost": lambda turns: sum((Decimal(str(t.get("cost", 0))) for t in turns), Decimal(0)),
}


def conversations_record(
    batch: list[tuple[Conversation, list[dict], dict | None]], *, totals: bool = True
) -> None:
    """Append the turns of many conversations at once: one insert, one update per org.

    The console's writer batches every open socket's turns through here (without
    `totals`: those are summed once, when the conversation finishes), so the database
    work per message stays off the response path and does not grow with the sockets.
    """
    batch = [(c, turns, state) for c, turns, state in batch if turns or state is not None]
    if not batch:
        return
    with transaction.atomic():
        insert_turns([(c, t) for c, turns, _ in batch for t in turns])
        for org in {c.org_id for c, _, _ in batch}:
            rows = [(c, turns, state) for c, turns, state in batch if c.org_id == org]
            updates = _totals_and_state(rows, totals)
            if updates:
                Conversation.objects.for_org(org).filter(pk__in=[c.pk for c, _, _ in rows]).update(**updates)


def _record_in_one_statement(conversation: Conversation, turns: list[dict], state: dict | None) -> None:
    """The gateway's every message: the turns and the totals in one statement, which is
    its own transaction. BEGIN, INSERT, UPDATE and COMMIT would be four round trips."""
    now = timezone.now()
    row = "(" + ", ".join(["%s"] * (len(TURN_COLUMNS) + 3)) + ")"
    counters = ", ".join(f"{field} = {field} + %s" for field in COUNTERS)
    sql = (
        f"WITH added AS (INSERT INTO {Turn._meta.db_table} ({turn_columns()}) "  # noqa: S608
        f"VALUES {', '.join([row] * len(turns))}) "
        f"UPDATE {Conversation._meta.db_table} SET {counters}, state = COALESCE(%s::jsonb, state) "
        "WHERE org_id = %s AND id = %s"
    )
    params = [value for t in turns for value in turn_row(conversation.org_id, conversation.pk, t, now)]
    params += [count(turns) for count in COUNTERS.values()]
    params += [None if state is None else json.dumps(state), conversation.org_id, conversation.pk]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _totals_and_state(rows, totals: bool) -> dict:
    """The UPDATE's assignments: plain for one conversation (the gateway's every
    message), a CASE on the id for many (the console's writer)."""
    counters = COUNTERS.items() if totals else ()
    with_state = [(c, state) for c, _, state in rows if state is not None]
    if len(rows) == 1:
        _, turns, state = rows[0]
        updates = {field: F(field) + count(turns) for field, count in counters}
        if state is not None:
            updates["state"] = Value(state, output_field=JSONField())
        return updates
    updates = {
        field: Case(
            *(When(pk=c.pk, then=F(field) + count(turns)) for c, turns, _ in rows),
            default=F(field),
            output_field=Conversation._meta.get_field(field),
        )
        for field, count in counters
    }
    if with_state:
        updates["state"] = Case(
            *(When(pk=c.pk, then=Value(state, output_field=JSONField())) for c, state in with_state),
            default=F("state"),
        )
    return updates


TURN_COLUMNS = (
    "index", "role", "text", "response_id", "interrupted", "latency_first_ms", "latency_total_ms",
    "tokens_in", "tokens_out", "cost", "details", "error",
)  # fmt: skip


def turn_columns() -> str:
    return ", ".join(("org_id", "conversation_id", *(f'"{c}"' for c in TURN_COLUMNS), "created_at"))


def turn_row(org_id, conversation_id, turn: dict, now) -> tuple:
    """One turn dict as the row the table stores, with the model's defaults filled in."""
    error = turn.get("error")
    return (
        org_id,
        conversation_id,
        turn.get("index", 0),
        turn.get("role", "agent"),
        turn.get("text", ""),
        turn.get("response_id", ""),
        bool(turn.get("interrupted", False)),
        turn.get("latency_first_ms"),
        turn.get("latency_total_ms"),
        turn.get("tokens_in", 0),
        turn.get("tokens_out", 0),
        Decimal(str(turn.get("cost", 0))),
        json.dumps(turn.get("details") or {}),
        None if error is None else json.dumps(error),
        now,
    )


def insert_turns(rows: list[tuple[Conversation, dict]]) -> None:
    """Many turns in one statement, past the ORM: its per-object work is the cost here.

    PostgreSQL gets COPY, whose rows psycopg encodes in C; SQLite one executemany.
    """
    if not rows:
        return
    columns = turn_columns()
    table = Turn._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            now = timezone.now()
            # The raw psycopg cursor skips Django's error translation: restore it, so a
            # duplicate turn is the IntegrityError callers already answer with 409.
            copy_sql = f"COPY {table} ({columns}) FROM STDIN"
            with connection.wrap_database_errors, cursor.cursor.copy(copy_sql) as copy:
                for c, t in rows:
                    copy.write_row(turn_row(c.org_id, c.pk, t, now))
            return
        now = connection.ops.adapt_datetimefield_value(timezone.now())
        marks = ", ".join(["%s"] * (len(TURN_COLUMNS) + 3))
        cursor.executemany(
            f"INSERT INTO {table} ({columns}) VALUES ({marks})",  # noqa: S608
            [turn_row(db_id(c.org_id), db_id(c.pk), t, now) for c, t in rows],
        )


def conversation_history(conversation: Conversation) -> list[dict]:
    return [
        {"role": role, "text": text}
        for role, text in Turn.objects.for_org(conversation.org_id)
        .filter(conversation=conversation)
        .order_by("index")
        .values_list("role", "text")
    ]


def conversation_finish(conversation: Conversation) -> None:
    """End the conversation and sum its turns into its totals (one query each)."""
    totals = (
        Turn.objects.for_org(conversation.org_id)
        .filter(conversation=conversation)
        .aggregate(
            turn_count=Count("id"),
            error_count=Count("id", filter=Q(error__isnull=False)),
            tokens_in=Coalesce(Sum("tokens_in"), 0),
            tokens_out=Coalesce(Sum("tokens_out"), 0),
            cost=Coalesce(Sum("cost"), Decimal(0), output_field=DecimalField()),
        )
    )
    Conversation.objects.for_org(conversation.org_id).filter(pk=conversation.pk).update(
        ended_at=Coalesce(F("ended_at"), Value(timezone.now())), **totals
    )


def conversation_rate(*, conversation: Conversation, rating) -> Conversation:
    if not isinstance(rating, int) or isinstance(rating, bool) or not 1 <= rating <= 5:
        raise Invalid(fields={"rating": ["A whole number from 1 to 5."]})
    if conversation.source != "live" and conversation.rating is not None:
        raise Conflict("This conversation is already rated.")
    Conversation.objects.for_org(conversation.org_id).filter(pk=conversation.pk).update(rating=rating)
    conversation.rating = rating
    return conversation


def transcript_of(conversation: Conversation) -> list[dict]:
    return [
        {"role": role, "text": text, "at": at.isoformat()}
        for role, text, at in Turn.objects.for_org(conversation.org_id)
        .filter(conversation=conversation, role__in=["user", "agent"])
        .order_by("index")
        .values_list("role", "text", "created_at")
    ]
