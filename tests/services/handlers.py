"""Operation handlers for the worker tests, imported by the test worker (--include).

`test.slow` runs longer than the broker's visibility timeout, heartbeating, and writes
one audit row each time a delivery starts it, committed at once: the tests count them.
"""

import time

from django.db import transaction

from lifecycle.audit import audit_record
from lifecycle.audit_export import OperationArtifact
from lifecycle.operations import Operation, operation_finish, operation_handler, operation_heartbeat

SLOW = "test.slow"


@operation_handler(SLOW)
def slow_run(operation: Operation) -> dict:
    audit_record(org=operation.org, actor=None, action="test.slow.run", target=operation)
    deadline = time.monotonic() + float(operation.params.get("seconds", 10))
    while time.monotonic() < deadline:
        time.sleep(0.5)
        operation_heartbeat(operation)
    with transaction.atomic():
        operation_finish(operation, result={"slept": operation.params.get("seconds", 10)})
        OperationArtifact.objects.create(
            org_id=operation.org_id,
            operation=operation,
            filename="slow.txt",
            content_type="text/plain",
            content=b"done",
        )
    return operation.result
