"""Operations on PostgreSQL: constraints recognised by name, and cancelling work while it
holds its own transaction open on another connection."""

import threading
import time

import pytest
from django.db import IntegrityError, connection, transaction

from lifecycle.audit_export import OperationArtifact
from lifecycle.constraints import constraint_violated
from lifecycle.operations import (
    _HANDLERS,
    Operation,
    operation_cancel,
    operation_execute,
    operation_handler,
    operation_progress,
)
from tests.factories import make_org, owner_access

pytestmark = pytest.mark.django_db(transaction=True)


def _violation(make) -> IntegrityError:
    try:
        with transaction.atomic():
            make()
    except IntegrityError as exc:
        return exc
    raise AssertionError("no IntegrityError")


def test_constraint_violated_reads_the_constraint_name_from_postgresql():
    assert connection.vendor == "postgresql"
    org = make_org()
    first = Operation.objects.create(org=org, kind="audit.export", exclusive_key="k")
    exc = _violation(lambda: Operation.objects.create(org=org, kind="audit.export", exclusive_key="k"))
    assert exc.__cause__.diag.constraint_name == "operation_one_active_per_key"
    assert constraint_violated(exc, "operation_one_active_per_key")
    assert not constraint_violated(exc, "another_constraint")
    # Another unique violation ("duplicate key value violates unique constraint ..."): not ours.
    exc = _violation(lambda: Operation.objects.create(id=first.pk, org=org, kind="audit.export"))
    assert not constraint_violated(exc, "operation_one_active_per_key")


def test_cancel_does_not_wait_for_the_running_work_and_rolls_it_back():
    org = make_org()
    access = owner_access(org)
    inside = threading.Event()
    checkpoints = []

    @operation_handler("test.pg_cancel")
    def long_transaction(operation):
        with transaction.atomic():
            OperationArtifact.objects.create(
                org_id=operation.org_id,
                operation=operation,
                filename="w",
                content_type="text/plain",
                content=b"x",
            )
            inside.set()
            for step in range(200):
                time.sleep(0.05)
                checkpoints.append(step)
                operation_progress(operation, step // 2)

    operation = Operation.objects.create(org=org, kind="test.pg_cancel", requested_by=access.user)

    def deliver():
        try:
            operation_execute(org_id=str(org.pk), operation_id=str(operation.pk))
        finally:
            connection.close()

    worker = threading.Thread(target=deliver)
    try:
        worker.start()
        assert inside.wait(20)
        started = time.monotonic()
        requested = operation_cancel(
            actor=access.user, operation=Operation.objects.for_org(org).get(pk=operation.pk)
        )
        assert time.monotonic() - started < 2, "the cancel request waited for the work's transaction"
        assert requested.status == "running" and requested.cancel_requested_at is not None
        worker.join(30)
        assert not worker.is_alive()
    finally:
        _HANDLERS.pop("test.pg_cancel", None)
    op = Operation.objects.for_org(org).get(pk=operation.pk)
    assert op.status == "cancelled"
    assert len(checkpoints) < 200, "the handler never saw the cancel request"
    assert not OperationArtifact.objects.for_org(org).exists(), "the cancelled work was committed"
