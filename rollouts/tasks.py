"""Thin Celery wrappers for rollouts. Tasks take ids and call services."""

from celery import shared_task


@shared_task(name="rollouts.live_safety_score", ignore_result=True, acks_late=True)
def live_safety_score(org_id: str, conversation_id: str, indexes: list[int]) -> None:
    from .services.live_safety import live_safety_record

    live_safety_record(org_id=org_id, conversation_id=conversation_id, indexes=indexes)


@shared_task(name="rollouts.releases_tick", ignore_result=True)
def releases_tick() -> None:
    """The beat's sweep: one analysis task per progressing release that is due."""
    from .services.release_analysis import releases_due

    for org_id, release_id in releases_due():
        release_analyze.delay(org_id, release_id)


@shared_task(name="rollouts.release_analyze", ignore_result=True, acks_late=True)
def release_analyze(org_id: str, release_id: str) -> None:
    from .services.release_analysis import release_analyze as analyze

    analyze(org_id=org_id, release_id=release_id)


@shared_task(name="rollouts.spend_tick", ignore_result=True)
def spend_tick() -> None:
    """The beat's sweep: every stage with a budget (or an open spend alert) is summed again."""
    from .spending import stages_to_watch

    for org_id, stage_id in stages_to_watch():
        spend_check.delay(org_id, stage_id)


@shared_task(name="rollouts.spend_check", ignore_result=True, acks_late=True)
def spend_check(org_id: str, stage_id: str) -> None:
    from .spending import stage_spend_check

    stage_spend_check(org_id=org_id, stage_id=stage_id)
