"""Thin Celery wrappers. Tasks take ids and call services."""

from celery import shared_task
from celery.contrib.django.task import DjangoTask


class DeliveryTask(DjangoTask):
    # At-least-once: a worker killed mid-delivery gives the message back to the broker;
    # the attempt number in the arguments makes a second copy a no-op.
    acks_late = True
    reject_on_worker_lost = True
    ignore_result = True


@shared_task(base=DeliveryTask, name="webhooks.deliver")
def deliver(org_id: str, delivery_id: str, attempt: int) -> None:
    from .services.delivery import delivery_attempt

    delivery_attempt(org_id=org_id, delivery_id=delivery_id, attempt=attempt)


@shared_task(name="webhooks.sweep", ignore_result=True)
def sweep() -> None:
    from .services.delivery import delivery_sweep, outbox_purge

    delivery_sweep()
    outbox_purge()
