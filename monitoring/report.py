"""The post-deployment report of a succeeded release: the new version's first 24 hours of
live traffic (or as much as has passed) against the old version's last hours before it.

Both sides cover the same length of time: the new version from the moment the release
succeeded, the old one over as long a stretch just before that moment (during a canary
both served, so the old side is the stable version's own traffic). Read from the minute
rollups: each edge is rounded to the minute.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from lifecycle.csvsafe import csv_cell
from lifecycle.errors import Conflict
from rollouts.models import Release, ReleaseStatus

from . import metrics
from .models import Alert

PERIOD = timedelta(hours=24)
# (key, label, how to read it from Totals, whether a larger value is better)
ROWS = (
    ("conversations", "Conversations", lambda t: t.conversations, None),
    ("turns", "Agent turns", lambda t: t.turns, None),
    ("errors", "Errors", lambda t: t.errors, False),
    ("error_rate", "Error rate", lambda t: t.error_rate, False),
    ("latency_p50_ms", "Latency p50 (ms)", lambda t: t.latency(0.5), False),
    ("latency_p95_ms", "Latency p95 (ms)", lambda t: t.latency(0.95), False),
    ("tokens_per_turn", "Tokens per turn", lambda t: round(t.tokens_per_turn, 1) if t.turns else None, False),
    ("cost", "Cost", lambda t: f"{t.cost:.6f}", None),
    ("rating_avg", "Average rating", lambda t: t.rating_avg, True),
    ("ratings", "Ratings", lambda t: t.rating_count, None),
)


def _change(old, new):
    try:
        old, new = float(old), float(new)
    except (TypeError, ValueError):
        return None
    return round(new / old - 1, 4) if old else None


def release_report(release: Release, *, now: datetime | None = None) -> dict:
    """The report as a dict (the API's shape); 409 for a release that has not succeeded."""
    if release.status != ReleaseStatus.SUCCEEDED or release.finished_at is None:
        raise Conflict("Only a succeeded release has a post-deployment report.")
    now = now or timezone.now()
    start = release.finished_at
    end = min(start + PERIOD, now)
    span = end - start
    sources = [s for s in settings.MONITORING_ALERT_SOURCES.split(",") if s]
    new = metrics.totals(
        org_id=release.org_id,
        start=start,
        end=end,
        sources=sources,
        agent_id=release.agent_id,
        version=release.candidate_version,
    )
    old = None
    if release.stable_version is not None:
        old = metrics.totals(
            org_id=release.org_id,
            start=start - span,
            end=start,
            sources=sources,
            agent_id=release.agent_id,
            version=release.stable_version,
        )
    rows = []
    for key, label, read, better_higher in ROWS:
        old_value = read(old) if old is not None else None
        new_value = read(new)
        rows.append(
            {
                "metric": key,
                "label": label,
                "old": old_value,
                "new": new_value,
                "change": _change(old_value, new_value),
                "better": better_higher,
            }
        )
    alerts = (
        Alert.objects.for_org(release.org_id)
        .filter(agent_id=release.agent_id, opened_at__gte=start, opened_at__lt=end)
        .order_by("opened_at", "id")
    )
    return {
        "release": str(release.pk),
        "strategy": release.strategy,
        "old_version": release.stable_version,
        "new_version": release.candidate_version,
        "finished_at": start,
        "until": end,
        "complete": end >= start + PERIOD,
        "metrics": rows,
        "alerts": [
            {
                "id": str(a.pk),
                "metric": a.metric,
                "level": a.level,
                "version": a.version,
                "value": f"{a.value.normalize():f}",
                "threshold": f"{a.threshold.normalize():f}",
                "opened_at": a.opened_at,
                "resolved_at": a.resolved_at,
            }
            for a in alerts
        ],
    }


def csv_row(values) -> list:
    """Numbers as numbers (a negative change is not a formula); text through csvsafe."""
    return [v if isinstance(v, int | float) and not isinstance(v, bool) else csv_cell(v) for v in values]


def release_report_csv(report: dict) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        csv_row(["metric", f"v{report['old_version']} (old)", f"v{report['new_version']} (new)", "change"])
    )
    for row in report["metrics"]:
        writer.writerow(csv_row([row["label"], row["old"], row["new"], row["change"]]))
    writer.writerow([])
    writer.writerow(csv_row(["alert", "level", "version", "value", "threshold", "opened_at", "resolved_at"]))
    for a in report["alerts"]:
        writer.writerow(
            csv_row(
                [
                    a["metric"],
                    a["level"],
                    a["version"],
                    a["value"],
                    a["threshold"],
                    a["opened_at"],
                    a["resolved_at"],
                ]
            )
        )
    writer.writerow([])
    writer.writerow(
        csv_row(["from", report["finished_at"].isoformat(), "until", report["until"].isoformat()])
    )
    return out.getvalue()
