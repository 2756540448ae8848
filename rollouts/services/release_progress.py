"""A progressive release's transitions: advance, pause, resume, rollback, succeed.

Each one locks the release row (select_for_update), checks its current status (409 when
the release is not in a state the transition starts from), writes the audit entry and
the webhook event in the same transaction, and tells the gateway's routing that the
split changed. The people's versions (`release_advance` …) check the manager role of
the agent's stage; the analysis (`release_analysis`) calls the same steps as `actor=None`.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from agents.models import Agent, Conversation, ConversationSource
from lifecycle.access import Access
from lifecycle.audit import audit_record
from lifecycle.errors import Conflict, Forbidden

from ..events import agent_event
from ..models import ACTIVE_RELEASE_STATUSES, Release, ReleaseStatus
from ..policy import duration_seconds
from ..release_config import interval_seconds
from ..traffic import routing_changed

SPLITTING = (ReleaseStatus.PROGRESSING, ReleaseStatus.PAUSED)
NOT_YET_SERVING = (ReleaseStatus.PENDING, ReleaseStatus.AWAITING_APPROVAL, ReleaseStatus.SMOKE_TESTING)


def release_event(release: Release, event: str, *, reason: str = "", actor=None, **extra) -> None:
    """The webhook event and its data: ids, versions and weight, never secrets."""
    agent_event(
        event,
        release.agent,
        actor=actor,
        release=str(release.pk),
        strategy=release.strategy,
        status=release.status,
        stable_version=release.stable_version,
        version=release.candidate_version,
        weight=release.weight,
        step=release.step,
        reason=reason,
        automatic=actor is None,
        **extra,
    )


def _audit(release: Release, actor, action: str, reason: str, **changes) -> None:
    audit_record(
        org=release.org,
        actor=actor,
        action=action,
        target=release.agent,
        changes={
            "release": str(release.pk),
            "status": release.status,
            "weight": release.weight,
            "step": release.step,
            "reason": reason,
            "automatic": actor is None,
            **changes,
        },
    )


def _locked(release: Release) -> Release:
    return (
        Release.objects.for_org(release.org_id)
        .select_related("agent", "agent__stage", "org")
        .select_for_update(of=("self",))
        .get(pk=release.pk)
    )


def _may_manage(access: Access, release: Release) -> None:
    agent = release.agent
    if not access.has_stage_role(agent.stage_id, "manager"):
        raise Forbidden(f"Releases in {agent.stage.name} need the manager role there.")


def _clean(reason) -> str:
    return (reason or "").strip()[:2000] if isinstance(reason, str) else ""


def _user(actor):
    return actor if getattr(actor, "is_authenticated", False) else None


# --- moving through the steps ------------------------------------------------------------
def _enter_step(release: Release, step: int, now) -> None:
    release.step = step
    release.weight = release.steps[step]["weight"]
    release.step_started_at = now
    release.config["streak"] = {"inconclusive": 0, "error": 0}
    if release.status == ReleaseStatus.PROGRESSING:
        release.next_analysis_at = now + timedelta(seconds=interval_seconds(release))


def _succeed(release: Release, actor, reason: str, now) -> None:
    """At 100 %: the candidate becomes the live version; the stable one stays warm."""
    release.status = ReleaseStatus.SUCCEEDED
    release.weight = 100
    release.step = len(release.steps) - 1
    release.finished_at = now
    release.next_analysis_at = None
    release.warm_until = now + timedelta(
        seconds=duration_seconds(release.config.get("keep_warm", "0s") or "0s")
    )
    release.save()
    Agent.objects.for_org(release.org_id).filter(pk=release.agent_id).update(
        live_version=release.candidate_version
    )
    release.agent.live_version = release.candidate_version
    _audit(release, actor, "release.succeeded", reason, warm_until=release.warm_until.isoformat())
    from monitoring.services import alert_resolve

    # An earlier automatic rollback's alert ends once a release of the agent succeeds.
    alert_resolve(
        org=release.org,
        stage=release.agent.stage,
        metric="release_rollback",
        agent=release.agent,
        reason=f"Release of version {release.candidate_version} succeeded.",
    )
    release_event(release, "release.succeeded", reason=reason, actor=_user(actor))
    routing_changed(release.agent_id)


def release_step_forward(release: Release, *, actor, reason: str) -> Release:
    """One step on (call with the row locked): the next weight, or success at 100."""
    now = timezone.now()
    nxt = release.step + 1
    if nxt >= len(release.steps) or release.steps[nxt]["weight"] >= 100:
        _succeed(release, actor, reason, now)
        return release
    _enter_step(release, nxt, now)
    release.save()
    _audit(release, actor, "release.advanced", reason)
    release_event(release, "release.advanced", reason=reason, actor=_user(actor))
    routing_changed(release.agent_id)
    return release


def release_advance(*, access: Access, release: Release, reason: str = "") -> Release:
    """A manager moves the release on a step now (at the last step: success)."""
    _may_manage(access, release)
    reason = _clean(reason)
    with transaction.atomic():
        release = _locked(release)
        if release.status not in SPLITTING:
            raise Conflict(f"A {release.status.replace('_', ' ')} release cannot be advanced.")
        return release_step_forward(release, actor=access.user, reason=reason or "Advanced by hand.")


def release_pause(*, access: Access | None, release: Release, reason: str = "") -> Release:
    if access is not None:
        _may_manage(access, release)
    with transaction.atomic():
        release = _locked(release)
        if release.status != ReleaseStatus.PROGRESSING:
            raise Conflict(f"Only a progressing release can be paused; this one is {release.status}.")
        return release_hold(release, actor=access.user if access else None, reason=_clean(reason))


def release_hold(release: Release, *, actor, reason: str) -> Release:
    """Paused (call with the row locked): it keeps splitting at its weight, but stops advancing."""
    release.status = ReleaseStatus.PAUSED
    release.next_analysis_at = None
    release.save()
    _audit(release, actor, "release.paused", reason)
    release_event(release, "release.paused", reason=reason, actor=_user(actor))
    routing_changed(release.agent_id)
    return release


def release_resume(*, access: Access, release: Release, reason: str = "") -> Release:
    _may_manage(access, release)
    reason = _clean(reason)
    with transaction.atomic():
        release = _locked(release)
        if release.status != ReleaseStatus.PAUSED:
            raise Conflict(f"Only a paused release can be resumed; this one is {release.status}.")
        release.status = ReleaseStatus.PROGRESSING
        release.config["streak"] = {"inconclusive": 0, "error": 0}
        release.next_analysis_at = timezone.now() + timedelta(seconds=interval_seconds(release))
        release.save()
        _audit(release, access.user, "release.resumed", reason)
        release_event(release, "release.resumed", reason=reason, actor=access.user)
        routing_changed(release.agent_id)
    return release


# --- rollback --------------------------------------------------------------------------
def release_rollback(*, access: Access, release: Release, reason: str = "", safety: bool = False) -> Release:
    """Instant: no analysis, 0 % on the candidate. A succeeded release still warm is undone:
    its stable version is live again."""
    _may_manage(access, release)
    with transaction.atomic():
        release = _locked(release)
        return release_undo(
            release, actor=access.user, reason=_clean(reason) or "Rolled back by hand.", safety=safety
        )


def release_undo(release: Release, *, actor, reason: str, safety: bool = False) -> Release:
    """The rollback itself (call with the row locked)."""
    now = timezone.now()
    if release.status == ReleaseStatus.SUCCEEDED:
        _restore_warm(release, now)
    elif release.status in NOT_YET_SERVING:
        release.status = ReleaseStatus.ABORTED  # it never served: nothing to roll back to
    elif release.status in SPLITTING:
        release.status = ReleaseStatus.ROLLED_BACK
    else:
        raise Conflict(f"A {release.status.replace('_', ' ')} release cannot be rolled back.")
    release.weight = 0
    release.finished_at = now
    release.next_analysis_at = None
    release.reason = reason
    release.safety_rollback = safety
    release.save()
    moved = _move_open_conversations(release) if safety else 0
    _audit(release, _user(actor), "release.rolled_back", reason, safety=safety, conversations_moved=moved)
    release_event(release, "release.rolled_back", reason=reason, actor=_user(actor), safety=safety)
    routing_changed(release.agent_id)
    return release


def _restore_warm(release: Release, now) -> None:
    agent = Agent.objects.for_org(release.org_id).select_for_update().get(pk=release.agent_id)
    if release.stable_version is None:
        raise Conflict("Nothing was live before this release: there is no version to go back to.")
    if release.warm_until is None or release.warm_until <= now:
        raise Conflict("The previous version is no longer kept warm: make it live with a new release.")
    if agent.live_version != release.candidate_version:
        raise Conflict("A later release changed the live version since.")
    if (
        Release.objects.for_org(release.org_id)
        .filter(agent=agent, status__in=ACTIVE_RELEASE_STATUSES)
        .exists()
    ):
        raise Conflict("Another release of this agent is in progress.")
    Agent.objects.for_org(release.org_id).filter(pk=agent.pk).update(live_version=release.stable_version)
    release.agent.live_version = release.stable_version
    release.status = ReleaseStatus.ROLLED_BACK
    release.warm_until = None


def _move_open_conversations(release: Release) -> int:
    """After a safety rollback the candidate answers no one: its open live conversations
    are served by the stable version from their next message."""
    if release.stable_version is None:
        return 0
    return (
        Conversation.objects.for_org(release.org_id)
        .filter(
            agent_id=release.agent_id,
            source=ConversationSource.LIVE,
            version=release.candidate_version,
            ended_at__isnull=True,
        )
        .update(version=release.stable_version)
    )
