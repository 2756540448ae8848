"""Services that change an operation's state: start, finish, fail, cancel, and the
settling of a parent once its children have ended."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial

from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone

from .. import context
from ..constraints import constraint_violated
from ..errors import Conflict
from .checkpoints import (
    AlreadyFinished,
    LeaseLost,
    OperationCancelled,
    _cancel_key,
    _lease_expiry,
    _lease_key,
    _progress_key,
)
from .models import ACTIVE_STATUSES, WAITING_FOR_CHILDREN, Operation, OperationStatus

logger = logging.getLogger(__name__)

Handler = Callable[[Operation], "dict | None"]


_HANDLERS: dict[str, Handler] = {}
# kind -> functions called with (operation, error) inside operation_fail's transaction,
# so what they write (an outbox event) commits with the failure or not at all.
_FAILURE_HOOKS: dict[str, list[Callable]] = {}


def operation_handler(kind: str):
    """Register the function that performs operations of `kind`."""

    def register(fn: Handler) -> Handler:
        if kind in _HANDLERS and _HANDLERS[kind] is not fn:
            raise RuntimeError(f"operation kind {kind!r} registered twice")
        _HANDLERS[kind] = fn
        return fn

    return register


def operation_failure_hook(kind: str):
    """Register a function told when an operation of `kind` fails."""

    def register(fn: Callable) -> Callable:
        hooks = _FAILURE_HOOKS.setdefault(kind, [])
        if fn not in hooks:
            hooks.append(fn)
        return fn

    return register


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
    from ..tasks import run_operation

    run_operation.delay_on_commit(str(operation.org_id), str(operation.id))


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
    from ..audit import audit_record

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
        for hook in _FAILURE_HOOKS.get(operation.kind, ()):
            try:
                with transaction.atomic():  # a savepoint: a broken hook never undoes the failure
                    hook(operation, error)
            except Exception:
                logger.exception("operation %s: failure hook %s raised", operation.pk, hook.__qualname__)
        _on_end(operation)


def _end_cancelled(operation: Operation) -> None:
    """The handler saw the cancel request and its work was rolled back."""
    from ..audit import audit_record

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
    from ..audit import audit_record

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


def operation_cancel(*, actor, operation: Operation) -> Operation:
    """Cancel an operation and its children.

    Work not yet running (queued, awaiting approval), a parent only waiting for its
    children, and running work whose lease lapsed (its worker died) end at once.
    Running work is asked to stop: its handler sees the request at its next progress
    report or heartbeat, rolls its transaction back, and the operation ends cancelled.
    """
    from ..audit import audit_record

    current = Operation.objects.for_org(operation.org_id).filter(pk=operation.pk).first()
    if current is not None and current.status == OperationStatus.RUNNING and not _ends_at_once(current):
        # Tell the handler before taking the row's lock: on SQLite the running work's own
        # transaction holds the database's write lock until the handler stops.
        cache.set(_cancel_key(operation.pk), True, timeout=24 * 3600)
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
    from ..audit import audit_record

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
