"""Thin Celery wrappers around the approvals services."""

from celery import shared_task


@shared_task(name="approvals.expire_due", ignore_result=True)
def expire_due() -> None:
    from .services.approval import approvals_expire_due

    approvals_expire_due()
