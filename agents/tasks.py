"""Thin Celery wrappers for the agents domain. Tasks take ids and call services."""

from celery import shared_task
from celery.contrib.django.task import DjangoTask


class ContinueTask(DjangoTask):
    # At-least-once: the service writes nothing on a second run.
    acks_late = True
    reject_on_worker_lost = True
    ignore_result = True


@shared_task(base=ContinueTask, name="agents.continue_action_approval")
def continue_action_approval(org_id: str, approval_id: str) -> None:
    from .services.action_approvals import action_approval_continue

    action_approval_continue(org_id=org_id, approval_id=approval_id)


@shared_task(name="agents.sweep_action_approvals", ignore_result=True)
def sweep_action_approvals() -> None:
    from .services.action_approvals import action_approvals_sweep

    action_approvals_sweep()
