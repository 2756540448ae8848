"""Rolling stored turns up into per-minute metric rows (MetricRollup).

Each run reads the turns past the org's watermark (their ids only grow), groups them by
agent, version, source, minute and latency bucket in one aggregate query, adds the
result to the minute rows and moves the watermark, all in one transaction under the
watermark's row lock: two runs for one org never count a turn twice, and a run that
dies leaves nothing half done.

Turns younger than MONITORING_ROLLUP_SETTLE_SECONDS are left for the next run: ids are
handed out before commit, so a turn written by a slow transaction may appear after a
higher id has been seen. Conversation recording commits in one short statement (the
gateway) or one small batch (the console), well inside the settle time.
"""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Case, Count, F, IntegerField, Q, Sum, Value, When
from django.db.models.functions import TruncMinute
from django.utils import timezone

from agents.models import Turn

from . import histogram
from .models import MetricRollup, RollupWatermark

# Agent turns with a measured answer time: the greeting (an agent turn at index 0) is
# sent before anyone asks anything, at 0 ms, and would drag every percentile down.
TIMED = Q(role="agent", index__gt=0, latency_total_ms__isnull=False)


def _latency_bucket():
    whens = [
        When(TIMED & Q(latency_total_ms__lt=edge), then=Value(i)) for i, edge in enumerate(histogram.EDGES)
    ]
    whens.append(When(TIMED, then=Value(len(histogram.EDGES))))
    return Case(*whens, default=Value(-1), output_field=IntegerField())


def watermark_of(org_id) -> RollupWatermark:
    mark = RollupWatermark.objects.for_org(org_id).first()
    if mark is None:
        try:
            with transaction.atomic():
                mark = RollupWatermark.objects.create(org_id=org_id)
        except IntegrityError:  # another run made it first
            mark = RollupWatermark.objects.for_org(org_id).get()
    return mark


def metrics_rollup(*, org_id, now=None, batch: int | None = None) -> tuple[int, bool]:
    """Roll up the org's settled turns past its watermark (at most `batch`): the number of
    turns counted, and whether more are waiting."""
    now = now or timezone.now()
    batch = batch or settings.MONITORING_ROLLUP_BATCH
    settled = now - timedelta(seconds=settings.MONITORING_ROLLUP_SETTLE_SECONDS)
    watermark_of(org_id)
    with transaction.atomic():
        mark = RollupWatermark.objects.for_org(org_id).select_for_update().get()
        fresh = Turn.objects.for_org(org_id).filter(id__gt=mark.last_turn_id, created_at__lte=settled)
        # The batch's upper id: the batch-th new turn, or the newest settled one.
        upper = fresh.order_by("id").values_list("id", flat=True)[batch - 1 : batch].first()
        more = upper is not None
        if upper is None:
            upper = fresh.order_by("-id").values_list("id", flat=True).first()
        if upper is None:
            return 0, False
        groups = list(
            Turn.objects.for_org(org_id)
            .filter(id__gt=mark.last_turn_id, id__lte=upper, conversation__draft=False)
            .order_by()
            .values(
                "conversation__agent_id",
                "conversation__stage_id",
                "conversation__version",
                "conversation__source",
                minute=TruncMinute("created_at"),
                latency_bucket=_latency_bucket(),
            )
            .annotate(
                n=Count("id"),
                conversations=Count("id", filter=Q(index=0)),
                turns=Count("id", filter=Q(role="agent")),
                errors=Count("id", filter=Q(error__isnull=False)),
                latency_sum=Sum("latency_total_ms", filter=TIMED),
                tokens=Sum(F("tokens_in") + F("tokens_out")),
                cost=Sum("cost"),
            )
        )
        read = sum(g["n"] for g in groups)
        _add(org_id, groups)
        mark.last_turn_id = upper
        mark.save(update_fields=["last_turn_id", "updated_at"])
    return read, more


def _add(org_id, groups: list[dict]) -> None:
    """Add the aggregate's groups to their minute rows (created when new)."""
    merged: dict = {}
    for g in groups:
        key = (
            str(g["conversation__agent_id"]),
            g["conversation__version"],
            g["conversation__source"],
            g["minute"],
        )
        row = merged.get(key)
        if row is None:
            row = merged[key] = {
                "stage_id": g["conversation__stage_id"],
                "conversations": 0,
                "turns": 0,
                "errors": 0,
                "latency_count": 0,
                "latency_sum": 0,
                "histogram": histogram.empty(),
                "tokens": 0,
                "cost": Decimal(0),
            }
        row["conversations"] += g["conversations"]
        row["turns"] += g["turns"]
        row["errors"] += g["errors"]
        row["tokens"] += g["tokens"] or 0
        row["cost"] += Decimal(g["cost"] or 0)
        if g["latency_bucket"] >= 0:  # a group of timed agent turns
            row["latency_count"] += g["n"]
            row["latency_sum"] += g["latency_sum"] or 0
            row["histogram"][g["latency_bucket"]] += g["n"]
    if not merged:
        return
    existing = {
        (str(r.agent_id), r.version, r.source, r.bucket): r
        for r in MetricRollup.objects.for_org(org_id).filter(
            agent_id__in={k[0] for k in merged}, bucket__in={k[3] for k in merged}
        )
    }
    created, updated = [], []
    for key, row in merged.items():
        current = existing.get(key)
        if current is None:
            agent_id, version, source, minute = key
            created.append(
                MetricRollup(
                    org_id=org_id, agent_id=agent_id, version=version, source=source, bucket=minute, **row
                )
            )
            continue
        for name in ("conversations", "turns", "errors", "latency_count", "latency_sum", "tokens", "cost"):
            setattr(current, name, getattr(current, name) + row[name])
        current.histogram = histogram.merge(list(current.histogram) or histogram.empty(), row["histogram"])
        updated.append(current)
    MetricRollup.objects.for_org(org_id).bulk_create(created, batch_size=2000)
    if updated:
        _write_back(org_id, updated)


SUMS = ("conversations", "turns", "errors", "latency_count", "latency_sum", "histogram", "tokens", "cost")
CASTS = ("bigint", "integer", "integer", "integer", "integer", "bigint", "jsonb", "bigint", "numeric")


def _write_back(org_id, rows: list[MetricRollup]) -> None:
    """Store the merged rows. On PostgreSQL one UPDATE ... FROM (VALUES ...) per 2,000 rows:
    Django's bulk_update writes a CASE per column whose cost grows with the square of the
    rows, which a backlog (a worker down for an hour) turns into minutes."""
    if connection.vendor != "postgresql":
        MetricRollup.objects.for_org(org_id).bulk_update(rows, list(SUMS), batch_size=200)
        return
    table = MetricRollup._meta.db_table
    assignments = ", ".join(f'"{name}" = v."{name}"' for name in SUMS)
    columns = ", ".join(f'"{name}"' for name in ("id", *SUMS))
    row = "(" + ", ".join(f"%s::{cast}" for cast in CASTS) + ")"
    with connection.cursor() as cursor:
        for start in range(0, len(rows), 2000):
            chunk = rows[start : start + 2000]
            params = []
            for r in chunk:
                params += [r.pk, r.conversations, r.turns, r.errors, r.latency_count, r.latency_sum,
                           json.dumps(r.histogram), r.tokens, r.cost]  # fmt: skip
            values = ", ".join([row] * len(chunk))
            cursor.execute(
                f"UPDATE {table} AS t SET {assignments} FROM (VALUES {values}) AS v({columns}) "  # noqa: S608
                "WHERE t.id = v.id AND t.org_id = %s",
                [*params, org_id],
            )
