"""Operations: the record of background work, and the one Celery task that runs it.

A service creates an `Operation` inside its transaction and the task is enqueued on
commit. The task takes ids, re-fetches, claims the row, and calls the handler that was
registered for the operation's kind. Handlers must be idempotent: delivery is
at-least-once (`acks_late`, `reject_on_worker_lost`), so a SIGKILLed worker's task runs
again. `operation_finish` locks the row and refuses a second finish, so the work a
handler commits together with the finish happens exactly once.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, connection, models, transaction
from django.db.models import F, Q
from django.utils import timezone

from . import context
from .errors import Conflict, DomainError
from .tenancy import TenantModel

logger = logging.getLogger(__name__)


class OperationStatus(models.TextChoices):
    AWAITING_APPROVAL = "awaiting_approval"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE_STATUSES = (
    OperationStatus.AWAITING_APPROVAL,
    OperationStatus.QUEUED,
    OperationStatus.RUNNING,
)
FINISHED_STATUSES = (OperationStatus.SUCCEEDED, OperationStatus.FAILED, OperationStatus.CANCELLED)


class Operation(TenantModel):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=64)
    status = models.CharField(max_length=20, choices=OperationStatus.choices, default=OperationStatus.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)
    params = models.JSONField(default=dict, blank=True)
    result = models.JSONField(default=dict, blank=True)
    error = models.JSONField(null=True, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )
    # Which stage the work concerns: members with a role there may follow it.
    stage = models.ForeignKey(
        "accounts.Stage", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    # At most one active operation per non-empty key, e.g. "promote:<lineage>:<stage>".
    exclusive_key = models.CharField(max_length=200, blank=True)
    idempotency_key = models.CharField(max_length=200, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The delivery that runs the work holds a lease, renewed by progress and heartbeats:
    # a redelivery while the lease is live leaves the running one alone; once it has
    # expired (the worker died) a redelivery takes over.
    lease_owner = models.CharField(max_length=64, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    # Running work stops at its next progress report or heartbeat once this is set.
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    parent = models.ForeignKey(
        "self", on_delete=models.CASCADE, null=True, blank=True, related_name="children"
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["org", "exclusive_key"],
                condition=Q(status__in=ACTIVE_STATUSES) & ~Q(exclusive_key=""),
                name="operation_one_active_per_key",
            ),
        ]
        indexes = [models.Index(fields=["org", "-created_at"], name="operation_org_time")]

    def __str__(self) -> str:
        return f"{self.kind} {self.status}"

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_STATUSES


def operations_visible_to(access, queryset=None):
    """Operations the caller may follow: their own, their stages', or all for admins."""
    operations = queryset if queryset is not None else Operation.objects.for_org(access.org)
    operations = operations.select_related("stage", "requested_by").order_by("-created_at")
    if access.is_admin:
        return operations
    return operations.filter(Q(requested_by=access.user) | Q(stage_id__in=access.stage_ids_with("viewer")))


# --- handlers -------------------------------------------------------------------------
Handler = Callable[[Operation], "dict | None"]
_HANDLERS: dict[str, Handler] = {}


def operation_handler(kind: str):
    """Register the function that performs operations of `kind`."""

    def register(fn: Handler) -> Handler:
        if kind in _HANDLERS and _HANDLERS[kind] is not fn:
            raise RuntimeError(f"operation kind {kind!r} registered twice")
        _HANDLERS[kind] = fn
        return fn

    return register


# --- services -------------------------------------------------------------------------
def operation_start(
    *,
    org,
    actor,
    kind: str,
    params: dict | None = None,
    stage=None,
    target=None,
    exclusive_key: str = "",
    idempotency_key: str = "",
    status: str = OperationStatus.QUEUED,
    conflict_message: str = "The same work is already under way.",
) -> Operation:
    """Record an operation and enqueue it when the caller's transaction commits."""
    if kind not in _HANDLERS:
        raise RuntimeError(f"no handler for operation kind {kind!r}")
    try:
        # The savepoint keeps the caller's transaction usable after a unique violation.
        with transaction.atomic():
            operation = Operation.objects.create(
                org=org,
                kind=kind,
                status=status,
                params=params or {},
                requested_by=actor if getattr(actor, "is_authenticated", False) else None,
                stage=stage,
                target_type=target._meta.model_name if target is not None else "",
                target_id=str(target.pk) if target is not None else "",
                exclusive_key=exclusive_key,
                idempotency_key=idempotency_key,
                request_id=context.request_id_var.get(),
            )
    except IntegrityError as exc:
        if exclusive_key and _is_unique(exc):
            raise Conflict(conflict_message, details={"exclusive_key": exclusive_key}) from exc
        raise
    if status == OperationStatus.QUEUED:
        operation_enqueue(operation)
    return operation


def _is_unique(exc: IntegrityError) -> bool:
    text = str(exc).lower()
    return "unique" in text or "duplicate" in text


def operation_enqueue(operation: Operation) -> None:
    from .tasks import run_operation

    run_operation.delay_on_commit(str(operation.org_id), str(operation.id))


def _progress_key(operation_id) -> str:
    return f"operation-progress:{operation_id}"


def operation_progress(operation: Operation, progress: int) -> None:
    """Report progress so pollers see it while the work's own transaction is open.

    Inside a transaction the row would stay invisible until commit, so progress then
    goes to the shared cache, which the operation selector reads as well.
    """
    progress = max(0, min(100, int(progress)))
    operation.progress = progress
    cache.set(_progress_key(operation.id), progress, timeout=24 * 3600)
    if not connection.in_atomic_block:
        Operation.objects.for_org(operation.org_id).filter(
            pk=operation.pk, status=OperationStatus.RUNNING
        ).update(progress=progress)


def operation_live_progress(operation: Operation) -> int:
    if operation.status != OperationStatus.RUNNING:
        return operation.progress
    return max(operation.progress, cache.get(_progress_key(operation.id)) or 0)


class AlreadyFinished(Exception):
    """Another delivery of this operation finished it first; roll this one back."""


def operation_finish(operation: Operation, *, result: dict | None = None) -> Operation:
    """Mark succeeded. Call inside the transaction that commits the work itself."""
    with transaction.atomic():
        locked = Operation.objects.for_org(operation.org_id).select_for_update().get(pk=operation.pk)
        if locked.is_finished:
            raise AlreadyFinished(str(operation.pk))
        locked.status = OperationStatus.SUCCEEDED
        locked.progress = 100
        locked.result = result or {}
        locked.error = None
        locked.finished_at = timezone.now()
        locked.save(update_fields=["status", "progress", "result", "error", "finished_at"])
    operation.__dict__.update(
        status=locked.status,
        progress=100,
        result=locked.result,
        error=None,
        finished_at=locked.finished_at,
    )
    return operation


def operation_fail(operation: Operation, *, code: str, message: str, details=None) -> None:
    Operation.objects.for_org(operation.org_id).filter(pk=operation.pk, status__in=ACTIVE_STATUSES).update(
        status=OperationStatus.FAILED,
        error={"code": code, "message": message, "details": details or {}},
        finished_at=timezone.now(),
    )
    cache.delete(_progress_key(operation.id))


def operation_cancel(*, actor, operation: Operation) -> Operation:
    from .audit import audit_record

    with transaction.atomic():
        updated = (
            Operation.objects.for_org(operation.org_id)
            .filter(
                pk=operation.pk,
                status__in=[OperationStatus.QUEUED, OperationStatus.AWAITING_APPROVAL],
            )
            .update(status=OperationStatus.CANCELLED, finished_at=timezone.now())
        )
        if not updated:
            raise Conflict("Only queued or waiting operations can be cancelled.")
        audit_record(
            org=operation.org,
            actor=actor,
            action="operation.cancel",
            target=operation,
            changes={"kind": operation.kind},
        )
    operation.refresh_from_db()
    return operation


def operation_execute(*, org_id: str, operation_id: str) -> None:
    """Run one delivery of an operation. Safe to call any number of times."""
    claimed = (
        Operation.objects.for_org(org_id)
        .filter(pk=operation_id, status__in=[OperationStatus.QUEUED, OperationStatus.RUNNING])
        .update(
            status=OperationStatus.RUNNING,
            attempts=F("attempts") + 1,
            started_at=timezone.now(),
        )
    )
    if not claimed:
        return  # gone, finished, cancelled or waiting for approval: nothing to do
    operation = Operation.objects.for_org(org_id).select_related("org").get(pk=operation_id)
    if operation.attempts > settings.OPERATION_MAX_ATTEMPTS:
        operation_fail(
            operation,
            code="gave_up",
            message=f"Gave up after {operation.attempts - 1} attempts.",
        )
        return
    handler = _HANDLERS.get(operation.kind)
    with context.bound(request_id=operation.request_id):
        try:
            if handler is None:
                raise DomainError(f"No handler for {operation.kind}.")
            result = handler(operation)
            if not operation.is_finished:
                operation_finish(operation, result=result)
        except AlreadyFinished:
            logger.info("operation %s already finished by another delivery", operation.pk)
        except DomainError as exc:
            operation_fail(operation, code=exc.default_code, message=exc.message, details=exc.details)
        except Exception:
            logger.exception("operation %s (%s) failed", operation.pk, operation.kind)
            operation_fail(operation, code="internal", message="The operation failed unexpectedly.")
