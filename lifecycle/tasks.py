"""Thin Celery wrappers. Tasks take ids and call services."""

from celery import shared_task
from celery.contrib.django.task import DjangoTask
from django.conf import settings


class OperationTask(DjangoTask):
    # At-least-once: a worker killed mid-task gives the message back to the broker.
    acks_late = True
    reject_on_worker_lost = True
    ignore_result = True


@shared_task(base=OperationTask, name="lifecycle.run_operation", bind=True)
def run_operation(self, org_id: str, operation_id: str) -> None:
    from .operations import operation_execute

    look_again = operation_execute(org_id=org_id, operation_id=operation_id)
    if look_again is not None and not self.request.is_eager:
        # Another delivery holds a live lease (this is a redelivery past the broker's
        # visibility timeout). Acknowledging this message may drop the only copy, so
        # look again when that lease would lapse: if its worker died, this one takes over.
        # A countdown past Redis's visibility timeout would be handed out again and again.
        visibility = (getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", None) or {}).get(
            "visibility_timeout"
        )
        if visibility:
            look_again = min(look_again, visibility / 2)
        run_operation.apply_async((org_id, operation_id), countdown=look_again)


@shared_task(name="lifecycle.purge_idempotency_keys", ignore_result=True)
def purge_idempotency_keys() -> None:
    from .idempotency import idempotency_purge

    idempotency_purge()
