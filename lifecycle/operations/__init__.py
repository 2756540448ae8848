"""Operations: the record of background work, and what runs it (one Celery task).

`models` holds the record, `services` its state changes, `checkpoints` what handlers
call while they work, and `runner` one delivery of the task.

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

from .checkpoints import (
    AlreadyFinished,
    LeaseLost,
    OperationCancelled,
    operation_heartbeat,
    operation_live_progress,
    operation_progress,
)
from .models import (
    ACTIVE_STATUSES,
    FINISHED_STATUSES,
    WAITING_FOR_CHILDREN,
    Operation,
    OperationStatus,
    operation_children,
    operations_visible_to,
)
from .runner import operation_execute
from .services import (
    _HANDLERS,
    Handler,
    operation_cancel,
    operation_enqueue,
    operation_fail,
    operation_failure_hook,
    operation_finish,
    operation_handler,
    operation_start,
)

__all__ = [
    "ACTIVE_STATUSES",
    "FINISHED_STATUSES",
    "WAITING_FOR_CHILDREN",
    "_HANDLERS",
    "AlreadyFinished",
    "Handler",
    "LeaseLost",
    "Operation",
    "OperationCancelled",
    "OperationStatus",
    "operation_cancel",
    "operation_children",
    "operation_enqueue",
    "operation_execute",
    "operation_fail",
    "operation_failure_hook",
    "operation_finish",
    "operation_handler",
    "operation_heartbeat",
    "operation_live_progress",
    "operation_progress",
    "operation_start",
    "operations_visible_to",
]
