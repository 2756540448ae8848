"""Thin Celery wrappers for monitoring. Tasks take ids and call services."""

from celery import shared_task


@shared_task(name="monitoring.tick", ignore_result=True)
def monitoring_tick() -> None:
    """Beat's entry point: one task per live org, so one org's backlog delays no other."""
    from accounts.models import Organization

    for org_id in Organization.objects.filter(archived_at__isnull=True).values_list("pk", flat=True):
        monitoring_org_tick.delay(str(org_id))


# Idempotent: the rollup moves its watermark in the transaction that adds the counts, and
# alerts open once; a redelivered tick finds nothing new.
@shared_task(name="monitoring.org_tick", ignore_result=True, acks_late=True)
def monitoring_org_tick(org_id: str) -> None:
    from .watch import org_tick

    org_tick(org_id=org_id)
