"""Operations: the record of background work, and the one Celery task that runs it.

A service creates an `Operation` inside its transaction and the task is enqueued on
commit. The task takes ids, re-fetches, claims the row, and calls the handler that was
registered for the operation's kind. Delivery is at-least-once (`acks_late`,
`reject_on_worker_lost`, and Redis hands a message out again after its visibility
timeout even while it still runs), so:

- the claiming delivery holds a lease (`lease_owner`, `lease_expires_at`), renewed by
  `operation_progress` and `operation_heartbeat`. Another delivery while the lease is
  live does not run the handler; once it lapses (the worker died) it takes over.
- `operation_finish` locks the row and refuses a second finish, a finish by a delivery
  that lost its lease, and a finish after a cancel request, so the work a handler
  commits together with the finish happens exactly once.
- cancelling running work is cooperative: the handler's next checkpoint raises
  `OperationCancelled`, which rolls its transaction back.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, connection, models, transaction
from django.db.models import F, Q
from django.utils import timezone

from . import context
from .constraints import constraint_violated
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
# The lease owner of a parent whose handler is done while some of its children still run.
WAITING_FOR_CHILDREN = "children"


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
    parent: Operation | None = None,
    exclusive_key: str = "",
    idempotency_key: str = "",
    status: str = OperationStatus.QUEUED,
    conflict_message: str = "The same work is already under way.",
) -> Operation:
    """Record an operation and enqueue it when the caller's transaction commits.

    With `parent`, the operation is a child: the parent succeeds only once all its
    children have succeeded, and cancelling the parent cancels them.
    """
    if kind not in _HANDLERS:
        raise RuntimeError(f"no handler for operation kind {kind!r}")
    if parent is not None:
        if parent.org_id != org.pk:
            raise RuntimeError("a child operation belongs to its parent's organization")
        if parent.is_finished or parent.cancel_requested_at:
            raise Conflict("The parent operation has ended or is being cancelled.")
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
                parent=parent,
                exclusive_key=exclusive_key,
                idempotency_key=idempotency_key,
                request_id=context.request_id_var.get(),
            )
    except IntegrityError as exc:
        if exclusive_key and constraint_violated(exc, "operation_one_active_per_key"):
            raise Conflict(conflict_message, details={"exclusive_key": exclusive_key}) from exc
        raise
    if status == OperationStatus.QUEUED:
        operation_enqueue(operation)
    return operation


def operation_enqueue(operation: Operation) -> None:
    from .tasks import run_operation

    run_operation.delay_on_commit(str(operation.org_id), str(operation.id))


# --- progress, lease and cancellation checkpoints --------------------------------------
# Inside the work's own transaction a write to the operation's row would stay invisible
# until commit and hold the row's lock, blocking a cancel request and the lease check
# of a redelivery. So checkpoints there write to the shared cache, which the selector
# and the claim read as well; outside a transaction they write the row.


def _progress_key(operation_id) -> str:
    return f"operation-progress:{operation_id}"


def _lease_key(operation_id) -> str:
    return f"operation-lease:{operation_id}"


def _cancel_key(operation_id) -> str:
    return f"operation-cancel:{operation_id}"


def _lease_seconds() -> int:
    return settings.OPERATION_LEASE_SECONDS


class OperationCancelled(Exception):
    """Cancellation was asked for: raised at the handler's next checkpoint, it rolls the work back."""


class LeaseLost(Exception):
    """Another delivery took this operation over, or it ended: this delivery stops and rolls back."""


class AlreadyFinished(LeaseLost):
    """Another delivery of this operation finished it first; roll this one back."""


def operation_progress(operation: Operation, progress: int) -> None:
    """Report progress (0-100); also a checkpoint: renews the lease, sees a cancel request."""
    progress = max(0, min(100, int(progress)))
    operation.progress = progress
    cache.set(_progress_key(operation.id), progress, timeout=24 * 3600)
    _checkpoint(operation, progress=progress)


def operation_heartbeat(operation: Operation) -> None:
    """For handlers that go a while without progress: renew the lease, see a cancel request."""
    _checkpoint(operation)


def _checkpoint(operation: Operation, *, progress: int | None = None) -> None:
    owner = operation.lease_owner
    if not owner:
        return  # not run by operation_execute (a handler called directly): no lease to keep
    expires = timezone.now() + timedelta(seconds=_lease_seconds())
    if connection.in_atomic_block:
        held = cache.get(_lease_key(operation.pk))
        if held and held.get("owner") != owner:
            raise LeaseLost(str(operation.pk))
        _lease_cache(operation.pk, owner, expires)
    else:
        changes = {"lease_expires_at": expires}
        if progress is not None:
            changes["progress"] = progress
        renewed = (
            Operation.objects.for_org(operation.org_id)
            .filter(pk=operation.pk, status=OperationStatus.RUNNING, lease_owner=owner)
            .update(**changes)
        )
        if not renewed:
            raise LeaseLost(str(operation.pk))
        operation.lease_expires_at = expires
    if _cancel_requested(operation):
        raise OperationCancelled(str(operation.pk))


def _lease_cache(operation_id, owner: str, expires) -> None:
    cache.set(
        _lease_key(operation_id),
        {"owner": owner, "expires": expires.timestamp()},
        timeout=_lease_seconds() + 60,
    )


def _cancel_requested(operation: Operation) -> bool:
    if cache.get(_cancel_key(operation.pk)):
        return True
    # The cache may have been flushed; the row is the record (read, never written, here).
    return (
        Operation.objects.for_org(operation.org_id)
        .filter(pk=operation.pk, cancel_requested_at__isnull=False)
        .exists()
    )


def _lease_expiry(operation: Operation):
    """When the holder's lease ends: its row, or a later renewal made inside its transaction."""
    expires = operation.lease_expires_at
    held = cache.get(_lease_key(operation.pk))
    if held and held.get("owner") == operation.lease_owner:
        renewed = datetime.fromtimestamp(held["expires"], tz=UTC)
        if expires is None or renewed > expires:
            expires = renewed
    return expires


def operation_live_progress(operation: Operation) -> int:
    """Progress as pollers see it; a parent waiting for its children shows their mean with its own."""
    if operation.status != OperationStatus.RUNNING:
        return operation.progress
    if operation.lease_owner != WAITING_FOR_CHILDREN:
        return max(operation.progress, cache.get(_progress_key(operation.id)) or 0)
    # Its handler is done (100); each child counts as much as the parent's own work.
    children = list(Operation.objects.for_org(operation.org_id).filter(parent=operation))
    values = [100] + [operation_live_progress(child) for child in children]
    return sum(values) // len(values)


# --- ending ------------------------------------------------------------------------------
def operation_finish(operation: Operation, *, result: dict | None = None) -> Operation:
    """Mark the handler's work done. Call inside the transaction that commits the work.

    Refuses (raising, so the work rolls back) when another delivery finished or took
    over the operation, or when cancellation was asked for. A parent with children
    stays running until the last child ends (see `_parent_settle`).
    """
    with transaction.atomic():
        locked = Operation.objects.for_org(operation.org_id).select_for_update().get(pk=operation.pk)
        if locked.is_finished:
            raise AlreadyFinished(str(operation.pk))
        if operation.lease_owner and locked.lease_owner != operation.lease_owner:
            raise LeaseLost(str(operation.pk))
        if locked.cancel_requested_at or cache.get(_cancel_key(operation.pk)):
            raise OperationCancelled(str(operation.pk))
        locked.result = result or {}
        locked.error = None
        if Operation.objects.for_org(operation.org_id).filter(parent=locked).exists():
            locked.lease_owner, locked.lease_expires_at = WAITING_FOR_CHILDREN, None
            locked.save(update_fields=["result", "error", "lease_owner", "lease_expires_at"])
            transaction.on_commit(partial(_parent_settle, operation.org_id, operation.pk))
        else:
            locked.status = OperationStatus.SUCCEEDED
            locked.progress = 100
            locked.finished_at = timezone.now()
            locked.save(update_fields=["status", "progress", "result", "error", "finished_at"])
            _on_end(locked)
    operation.__dict__.update(
        status=locked.status,
        progress=locked.progress,
        result=locked.result,
        error=None,
        finished_at=locked.finished_at,
        lease_owner=locked.lease_owner,
    )
    return operation


def operation_fail(operation: Operation, *, code: str, message: str, details=None) -> None:
    """Mark failed and audit it: the code and message only (the stack goes to the log)."""
    from .audit import audit_record

    error = {"code": code, "message": message, "details": details or {}}
    with transaction.atomic():
        failed = (
            Operation.objects.for_org(operation.org_id)
            .filter(pk=operation.pk, status__in=ACTIVE_STATUSES, lease_owner=operation.lease_owner)
            .update(status=OperationStatus.FAILED, error=error, finished_at=timezone.now())
        )
        if not failed:
            return  # another delivery owns it now, or it already ended
        audit_record(
            org=operation.org,
            actor=None,
            action="operation.failed",
            target=operation,
            changes={"kind": operation.kind, "code": code, "message": message},
        )
        # The parent's work was rolled back: its children have nothing left to serve.
        _cancel_children(operation, actor=None, reason="parent failed")
        _on_end(operation)


def _end_cancelled(operation: Operation) -> None:
    """The handler saw the cancel request and its work was rolled back."""
    from .audit import audit_record

    with transaction.atomic():
        ended = (
            Operation.objects.for_org(operation.org_id)
            .filter(pk=operation.pk, status=OperationStatus.RUNNING, lease_owner=operation.lease_owner)
            .update(status=OperationStatus.CANCELLED, finished_at=timezone.now())
        )
        if not ended:
            return
        audit_record(
            org=operation.org,
            actor=None,
            action="operation.cancelled",
            target=operation,
            changes={"kind": operation.kind, "was": OperationStatus.RUNNING},
        )
        _cancel_children(operation, actor=None, reason="parent cancelled")
        _on_end(operation)


def _on_end(operation: Operation) -> None:
    """After an operation reaches a final state: forget its live state, tell its parent."""
    ids = [operation.pk]

    def after_commit():
        cache.delete_many([key(i) for i in ids for key in (_progress_key, _lease_key, _cancel_key)])
        if operation.parent_id:
            _parent_settle(operation.org_id, operation.parent_id)

    transaction.on_commit(after_commit)


def _parent_settle(org_id, parent_id) -> None:
    """End a parent whose handler is done once its last child has ended.

    It succeeds when every child succeeded, and fails (`child_failed`) otherwise; its
    own committed work is kept either way.
    """
    from .audit import audit_record

    with transaction.atomic():
        parent = (
            Operation.objects.for_org(org_id)
            .select_for_update()
            .filter(pk=parent_id, status=OperationStatus.RUNNING, lease_owner=WAITING_FOR_CHILDREN)
            .first()
        )
        if parent is None:
            return
        statuses = dict(Operation.objects.for_org(org_id).filter(parent=parent).values_list("id", "status"))
        if any(status in ACTIVE_STATUSES for status in statuses.values()):
            return
        parent.finished_at = timezone.now()
        unsuccessful = {str(i): s for i, s in statuses.items() if s != OperationStatus.SUCCEEDED}
        if unsuccessful:
            parent.status = OperationStatus.FAILED
            parent.error = {
                "code": "child_failed",
                "message": f"{len(unsuccessful)} of {len(statuses)} child operations did not succeed.",
                "details": {"children": unsuccessful},
            }
            audit_record(
                org=parent.org,
                actor=None,
                action="operation.failed",
                target=parent,
                changes={"kind": parent.kind, "code": "child_failed", "message": parent.error["message"]},
            )
        else:
            parent.status, parent.progress = OperationStatus.SUCCEEDED, 100
        parent.save(update_fields=["status", "progress", "error", "finished_at"])
        _on_end(parent)


# --- cancellation ------------------------------------------------------------------------
def operation_cancel(*, actor, operation: Operation) -> Operation:
    """Cancel an operation and its children.

    Work not yet running (queued, awaiting approval), a parent only waiting for its
    children, and running work whose lease lapsed (its worker died) end at once.
    Running work is asked to stop: its handler sees the request at its next progress
    report or heartbeat, rolls its transaction back, and the operation ends cancelled.
    """
    from .audit import audit_record

    with transaction.atomic():
        locked = Operation.objects.for_org(operation.org_id).select_for_update().get(pk=operation.pk)
        if locked.is_finished:
            raise Conflict(f"The operation has already {locked.status}.")
        if _ends_at_once(locked):
            was = locked.status
            locked.status, locked.finished_at = OperationStatus.CANCELLED, timezone.now()
            locked.save(update_fields=["status", "finished_at"])
            audit_record(
                org=operation.org,
                actor=actor,
                action="operation.cancelled",
                target=locked,
                changes={"kind": locked.kind, "was": was},
            )
            _on_end(locked)
        elif locked.cancel_requested_at is None:
            locked.cancel_requested_at = timezone.now()
            locked.save(update_fields=["cancel_requested_at"])
            audit_record(
                org=operation.org,
                actor=actor,
                action="operation.cancel_requested",
                target=locked,
                changes={"kind": locked.kind},
            )
            _flag_cancel(locked.pk)
        _cancel_children(locked, actor=actor, reason="parent cancelled")
    operation.refresh_from_db()
    return operation


def _ends_at_once(operation: Operation) -> bool:
    if operation.status != OperationStatus.RUNNING or operation.lease_owner == WAITING_FOR_CHILDREN:
        return True
    expires = _lease_expiry(operation)
    return expires is None or expires <= timezone.now()


def _flag_cancel(operation_id) -> None:
    # The handler checks the cache at its checkpoints, even inside its own transaction.
    transaction.on_commit(lambda: cache.set(_cancel_key(operation_id), True, timeout=24 * 3600))


def _cancel_children(parent: Operation, *, actor, reason: str) -> None:
    """Cancel the active descendants of `parent`, inside the caller's transaction."""
    from .audit import audit_record

    children = list(
        Operation.objects.for_org(parent.org_id)
        .select_for_update()
        .filter(parent_id=parent.pk, status__in=ACTIVE_STATUSES)
    )
    now = timezone.now()
    for child in children:
        if _ends_at_once(child):
            was = child.status
            child.status, child.finished_at = OperationStatus.CANCELLED, now
            child.save(update_fields=["status", "finished_at"])
            audit_record(
                org=parent.org,
                actor=actor,
                action="operation.cancelled",
                target=child,
                changes={"kind": child.kind, "was": was, "reason": reason},
            )
            cache.delete(_progress_key(child.pk))
        elif child.cancel_requested_at is None:
            child.cancel_requested_at = now
            child.save(update_fields=["cancel_requested_at"])
            _flag_cancel(child.pk)
        _cancel_children(child, actor=actor, reason=reason)


# --- running one delivery -------------------------------------------------------------
class _LeaseKeeper:
    """Renews the lease from a thread while the handler runs, so one long step without a
    checkpoint (a big INSERT … SELECT) does not let a redelivery take over live work.

    The lease then lapses when the worker process dies, which is what it is for. The
    renewal goes to the cache: a thread's write to the row would wait behind the work's
    own transaction on SQLite. Progress and heartbeats still renew it (and write the row)
    and are where a handler sees a cancel request.
    """

    def __init__(self, operation: Operation):
        self.operation = operation
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"lease-{operation.pk}", daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc_info):
        self.stopped.set()
        self.thread.join()

    def _run(self) -> None:
        interval = max(_lease_seconds() / 3, 0.2)
        pk, owner = self.operation.pk, self.operation.lease_owner
        while not self.stopped.wait(interval):
            try:
                held = cache.get(_lease_key(pk))
                if held and held.get("owner") != owner:
                    return  # taken over: the handler finds out at its next checkpoint
                _lease_cache(pk, owner, timezone.now() + timedelta(seconds=_lease_seconds()))
            except Exception:  # a cache outage must not kill the worker; the row's lease stands
                logger.warning("operation %s: could not renew the lease", pk, exc_info=True)


def _new_lease_owner() -> str:
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def _claim(org_id: str, operation_id: str) -> tuple[Operation | None, float | None]:
    """Take the operation for this delivery: (operation, None), or (None, look again in s|None)."""
    current = Operation.objects.for_org(org_id).filter(pk=operation_id).first()
    if current is None or current.status not in (OperationStatus.QUEUED, OperationStatus.RUNNING):
        return None, None  # gone, finished, cancelled or waiting for approval: nothing to do
    if current.lease_owner == WAITING_FOR_CHILDREN:
        return None, None  # the handler is done; its last child ends it
    now = timezone.now()
    if current.status == OperationStatus.RUNNING:
        expires = _lease_expiry(current)
        if expires is not None and expires > now:
            # Another delivery runs it. Look again when its lease would lapse: if its
            # worker died, this message may be the only one left to finish the work.
            return None, (expires - now).total_seconds() + 1
    owner = _new_lease_owner()
    expires = now + timedelta(seconds=_lease_seconds())
    claimed = (
        Operation.objects.for_org(org_id)
        .filter(
            pk=operation_id, status=current.status, lease_owner=current.lease_owner, attempts=current.attempts
        )
        .update(
            status=OperationStatus.RUNNING,
            attempts=F("attempts") + 1,
            started_at=now,
            lease_owner=owner,
            lease_expires_at=expires,
        )
    )
    if not claimed:
        return None, float(_lease_seconds())  # another delivery claimed it in between
    _lease_cache(operation_id, owner, expires)
    if current.status == OperationStatus.RUNNING:
        logger.warning(
            "operation %s: lease of %s lapsed; taken over by %s", operation_id, current.lease_owner, owner
        )
    return Operation.objects.for_org(org_id).select_related("org").get(pk=operation_id), None


def operation_execute(*, org_id: str, operation_id: str) -> float | None:
    """Run one delivery of an operation. Safe to call any number of times, concurrently too.

    Returns None, or the seconds after which this delivery should look again because
    another one holds a live lease on the operation.
    """
    operation, look_again = _claim(org_id, operation_id)
    if operation is None:
        return look_again
    if operation.attempts > settings.OPERATION_MAX_ATTEMPTS:
        operation_fail(
            operation,
            code="gave_up",
            message=f"Gave up after {operation.attempts - 1} attempts.",
        )
        return None
    handler = _HANDLERS.get(operation.kind)
    with context.bound(request_id=operation.request_id), _LeaseKeeper(operation):
        try:
            if operation.cancel_requested_at or cache.get(_cancel_key(operation.pk)):
                raise OperationCancelled(str(operation.pk))
            if handler is None:
                raise DomainError(f"No handler for {operation.kind}.")
            result = handler(operation)
            if operation.status == OperationStatus.RUNNING and operation.lease_owner != WAITING_FOR_CHILDREN:
                operation_finish(operation, result=result)
        except OperationCancelled:
            logger.info("operation %s (%s) cancelled while running", operation.pk, operation.kind)
            _end_cancelled(operation)
        except LeaseLost:
            logger.info("operation %s: another delivery finished or took it over", operation.pk)
        except DomainError as exc:
            logger.warning("operation %s (%s) failed: %s", operation.pk, operation.kind, exc.default_code)
            operation_fail(operation, code=exc.default_code, message=exc.message, details=exc.details)
        except Exception:
            logger.exception("operation %s (%s) failed", operation.pk, operation.kind)
            operation_fail(operation, code="internal", message="The operation failed unexpectedly.")
    return None


def operation_children(operation: Operation):
    """The operation's children, oldest first."""
    return Operation.objects.for_org(operation.org_id).filter(parent=operation).order_by("created_at")
