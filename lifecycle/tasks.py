"""Thin Celery wrappers. Tasks take ids and call services."""

from celery import shared_task
from celery.contrib.django.task import DjangoTask


class OperationTask(DjangoTask):
    # At-least-once: a worker killed mid-task gives the message back to the broker.
    acks_late = True
    reject_on_worker_lost = True
    ignore_result = True


@shared_task(base=OperationTask, name="lifecycle.run_operation")
def run_operation(org_id: str, operation_id: str) -> None:
    from .operations import operation_execute

    operation_execute(org_id=org_id, operation_id=operation_id)


@shared_task(name="lifecycle.purge_idempotency_keys", ignore_result=True)
def purge_idempotency_keys() -> None:
    from .idempotency import idempotency_purge

    idempotency_purge()
