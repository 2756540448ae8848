"""Running one delivery of an operation: claim it under a lease, keep the lease while the
handler runs, and record how it ended."""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db.models import F
from django.utils import timezone

from .. import context
from ..errors import DomainError
from .checkpoints import (
    LeaseLost,
    OperationCancelled,
    _cancel_key,
    _lease_cache,
    _lease_expiry,
    _lease_key,
    _lease_seconds,
)
from .models import WAITING_FOR_CHILDREN, Operation, OperationStatus
from .services import _HANDLERS, _end_cancelled, operation_fail, operation_finish

logger = logging.getLogger(__name__)


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
