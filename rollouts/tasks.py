"""Thin Celery wrappers for rollouts. Tasks take ids and call services."""

from celery import shared_task


@shared_task(name="rollouts.live_safety_score", ignore_result=True, acks_late=True)
def live_safety_score(org_id: str, conversation_id: str, indexes: list[int]) -> None:
    from .services.live_safety import live_safety_record

    live_safety_record(org_id=org_id, conversation_id=conversation_id, indexes=indexes)
