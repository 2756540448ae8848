"""Checkpoints inside a handler: progress, heartbeat, and the lease they renew.

Inside the work's own transaction a write to the operation's row would stay invisible
until commit and hold the row's lock, blocking a cancel request and the lease check of
a redelivery. So checkpoints there write to the shared cache, which the selector and
the claim read as well; outside a transaction they write the row.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from .models import WAITING_FOR_CHILDREN, Operation, OperationStatus


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
