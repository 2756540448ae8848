"""The audit log as CSV: filters, the streamed download, and the background export.

`?format=csv` streams small and medium logs straight away. A large log is exported by
an `audit.export` operation, which reports progress and leaves one downloadable
artifact, written together with the operation's finish so it exists exactly once.
"""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime

from django.db import models, transaction
from django.utils.dateparse import parse_datetime

from .audit import AUDIT_CSV_COLUMNS, AuditEvent, audit_csv_row, audit_record
from .errors import Forbidden, Invalid
from .operations import Operation, operation_finish, operation_handler, operation_progress, operation_start
from .tenancy import TenantModel

FILTERS = ("actor", "action", "since", "until", "target_type", "target_id")
EXPORT_CHUNK = 2000


class OperationArtifact(TenantModel):
    """A file an operation produced (an export). One per operation."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    operation = models.OneToOneField(Operation, on_delete=models.PROTECT, related_name="artifact")
    filename = models.CharField(max_length=200)
    content_type = models.CharField(max_length=100)
    content = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)


def _parse_time(name: str, raw: str) -> datetime:
    try:
        value = parse_datetime(raw) if raw else None
    except ValueError:
        value = None
    if value is None:
        raise Invalid(fields={name: ["Expected an ISO 8601 date-time."]})
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    # Normalise to UTC: PostgreSQL refuses offsets beyond ±15:59 that Python accepts.
    return value.astimezone(UTC)


def audit_filtered(queryset, filters: dict):
    """Apply the documented audit filters to a scoped AuditEvent queryset."""
    actor = (filters.get("actor") or "").strip()
    if actor:
        try:
            queryset = queryset.filter(actor_id=uuid.UUID(actor))
        except ValueError:
            queryset = queryset.filter(actor_email__iexact=actor)
    action = (filters.get("action") or "").strip()
    if action.endswith("*"):
        queryset = queryset.filter(action__startswith=action[:-1])
    elif action:
        queryset = queryset.filter(action=action)
    if filters.get("since"):
        queryset = queryset.filter(created_at__gte=_parse_time("since", filters["since"]))
    if filters.get("until"):
        queryset = queryset.filter(created_at__lt=_parse_time("until", filters["until"]))
    for name in ("target_type", "target_id"):
        if filters.get(name):
            queryset = queryset.filter(**{name: filters[name]})
    return queryset.order_by("-created_at")


class _Echo:
    def write(self, value):
        return value


def audit_csv_stream(queryset):
    """Rows of CSV text, header first, for a StreamingHttpResponse."""
    writer = csv.writer(_Echo())
    yield writer.writerow(AUDIT_CSV_COLUMNS)
    for event in queryset.iterator(chunk_size=EXPORT_CHUNK):
        yield writer.writerow(audit_csv_row(event))


def audit_export_start(*, access, filters: dict) -> Operation:
    if not access.is_admin:
        raise Forbidden("Only owners and admins can export the audit log.")
    clean = {k: str(v) for k, v in filters.items() if k in FILTERS and v not in (None, "")}
    # Validate now, so bad filters are a 400 rather than a failed operation.
    audit_filtered(AuditEvent.objects.for_org(access.org), clean)
    with transaction.atomic():
        operation = operation_start(org=access.org, actor=access.user, kind="audit.export", params=clean)
        audit_record(
            org=access.org,
            actor=access.user,
            action="audit.export",
            target=operation,
            changes={"filters": clean},
        )
    return operation


@operation_handler("audit.export")
def audit_export_run(operation: Operation) -> dict:
    events = audit_filtered(AuditEvent.objects.for_org(operation.org_id), operation.params)
    total = events.count() or 1
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(AUDIT_CSV_COLUMNS)
    rows = 0
    for event in events.iterator(chunk_size=EXPORT_CHUNK):
        writer.writerow(audit_csv_row(event))
        rows += 1
        if rows % EXPORT_CHUNK == 0:
            operation_progress(operation, min(99, rows * 100 // total))
    result = {
        "rows": rows,
        "download": f"/api/v1/orgs/{operation.org.slug}/operations/{operation.pk}/download/",
    }
    with transaction.atomic():
        # Finish first: it locks the row and refuses if another delivery got there.
        operation_finish(operation, result=result)
        OperationArtifact.objects.create(
            org_id=operation.org_id,
            operation=operation,
            filename=f"audit-{operation.org.slug}-{operation.created_at:%Y%m%d-%H%M%S}.csv",
            content_type="text/csv",
            content=buffer.getvalue().encode(),
        )
    return result
