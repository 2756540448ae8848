"""Operations on a real Celery worker through Redis, including a SIGKILL mid-task."""

import os
import time

import pytest
from django.db import connection

from lifecycle.audit import AuditEvent
from lifecycle.audit_export import OperationArtifact, audit_export_start
from lifecycle.operations import Operation, operation_cancel, operation_live_progress, operation_start
from tests.factories import make_org, owner_access
from tests.processes import wait_for
from tests.services.handlers import SLOW  # registers the handler in this process too

pytestmark = pytest.mark.django_db(transaction=True)
KILL_LOOPS = int(os.environ.get("LIFECYCLE_KILL_LOOPS", "1"))
EXPORT_ROWS = int(os.environ.get("LIFECYCLE_KILL_EXPORT_ROWS", "150000"))


def op_state(org, op_id) -> Operation:
    return Operation.objects.for_org(org).get(pk=op_id)


def test_an_operation_round_trips_through_redis_on_a_real_worker(worker_factory):
    org = make_org()
    access = owner_access(org)
    worker_factory()
    operation = audit_export_start(access=access, filters={})
    done = wait_for(lambda: op_state(org, operation.pk).is_finished, 60, 0.1, "operation to finish")
    op = op_state(org, operation.pk)
    assert done and op.status == "succeeded", op.error
    assert op.attempts == 1
    assert op.result["rows"] >= 2
    assert OperationArtifact.objects.for_org(org).filter(operation=op).count() == 1


def _fill_audit_log(org, actor, rows: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO lifecycle_auditevent
                (id, org_id, actor_id, actor_email, action, target_type, target_id, target_repr,
                 changes, request_id, ip, created_at)
            SELECT gen_random_uuid(), %s, %s, %s, 'test.bulk', 'thing', n::text, 'thing ' || n,
                   jsonb_build_object('n', n), '', NULL, now() - (n || ' seconds')::interval
            FROM generate_series(1, %s) AS n
            """,
            [org.pk, actor.pk, actor.email, rows],
        )


@pytest.mark.parametrize("loop", range(KILL_LOOPS))
def test_sigkill_mid_task_is_redelivered_and_finishes_exactly_once(worker_factory, loop):
    org = make_org()
    access = owner_access(org)
    _fill_audit_log(org, access.user, EXPORT_ROWS)
    worker = worker_factory("doomed")
    operation = audit_export_start(access=access, filters={"action": "test.bulk"})

    def mid_task():
        op = op_state(org, operation.pk)
        return op.status == "running" and 0 < operation_live_progress(op) < 90

    wait_for(mid_task, 120, 0.01, "the export to be under way")
    worker.kill()  # SIGKILL the whole worker: its message stays unacknowledged in Redis
    op = op_state(org, operation.pk)
    assert op.status == "running" and op.attempts == 1, "the kill landed after the work finished"
    assert not OperationArtifact.objects.for_org(org).exists()

    started = time.monotonic()
    worker_factory("rescuer")
    wait_for(lambda: op_state(org, operation.pk).is_finished, 120, 0.2, "redelivery to finish the operation")
    op = op_state(org, operation.pk)
    assert op.status == "succeeded", op.error
    assert op.attempts == 2, "delivered twice: once killed, once finished"
    assert op.result["rows"] == EXPORT_ROWS
    assert OperationArtifact.objects.for_org(org).filter(operation=op).count() == 1
    print(f"redelivered and finished {time.monotonic() - started:.1f}s after the kill")


# --- the lease: redelivery past the visibility timeout, and a dead worker's task ----------
def _slow_operation(org, access, seconds: float) -> Operation:

    return operation_start(org=org, actor=access.user, kind=SLOW, params={"seconds": seconds})


def _runs(org, operation) -> int:
    return AuditEvent.objects.for_org(org).filter(action="test.slow.run", target_id=str(operation.pk)).count()


def test_a_task_redelivered_past_the_visibility_timeout_does_not_run_twice(worker_factory, services_env):
    org = make_org()
    access = owner_access(org)
    visibility = int(services_env["CELERY_VISIBILITY_TIMEOUT"])
    worker_factory("busy")  # two pool processes: the redelivered copy has one free to run in
    operation = _slow_operation(org, access, seconds=visibility * 2 + 3)
    wait_for(
        lambda: op_state(org, operation.pk).is_finished, visibility * 2 + 60, 0.2, "the slow operation to end"
    )
    op = op_state(org, operation.pk)
    assert op.status == "succeeded", op.error
    assert _runs(org, op) == 1, "the redelivered task ran the handler a second time, at the same time"
    assert op.attempts == 1
    assert OperationArtifact.objects.for_org(org).filter(operation=op).count() == 1


def test_a_killed_workers_task_is_taken_over_once_its_lease_lapses(worker_factory, services_env):
    org = make_org()
    access = owner_access(org)
    lease = int(services_env["CELERY_VISIBILITY_TIMEOUT"]) + 4  # outlives the redelivery
    worker = worker_factory("doomed", OPERATION_LEASE_SECONDS=str(lease))
    operation = _slow_operation(org, access, seconds=4)
    wait_for(lambda: _runs(org, operation) == 1, 60, 0.05, "the slow operation to start")
    time.sleep(1)  # a heartbeat or two
    worker.kill()
    op = op_state(org, operation.pk)
    assert op.status == "running" and op.attempts == 1
    lease_end = op.lease_expires_at
    worker_factory("rescuer", OPERATION_LEASE_SECONDS=str(lease))
    wait_for(lambda: op_state(org, operation.pk).is_finished, lease + 60, 0.2, "the rescuer to finish it")
    op = op_state(org, operation.pk)
    assert op.status == "succeeded", op.error
    assert op.attempts == 2 and _runs(org, op) == 2
    second_start = (
        AuditEvent.objects.for_org(org)
        .filter(action="test.slow.run", target_id=str(op.pk))
        .latest("created_at")
    ).created_at
    assert second_start >= lease_end, "taken over while the dead worker's lease was still live"
    assert OperationArtifact.objects.for_org(org).filter(operation=op).count() == 1


def test_cancelling_work_running_on_a_worker_stops_it_and_rolls_it_back(worker_factory):
    org = make_org()
    access = owner_access(org)
    worker_factory()
    operation = _slow_operation(org, access, seconds=30)
    wait_for(lambda: _runs(org, operation) == 1, 60, 0.05, "the slow operation to start")
    requested = operation_cancel(actor=access.user, operation=op_state(org, operation.pk))
    assert requested.status == "running" and requested.cancel_requested_at is not None
    wait_for(
        lambda: op_state(org, operation.pk).is_finished, 20, 0.1, "the handler to see the cancel request"
    )
    op = op_state(org, operation.pk)
    assert op.status == "cancelled"
    assert not OperationArtifact.objects.for_org(org).filter(operation=op).exists()
    assert list(
        AuditEvent.objects.for_org(org)
        .filter(action__startswith="operation.")
        .order_by("created_at")
        .values_list("action", flat=True)
    ) == ["operation.cancel_requested", "operation.cancelled"]
