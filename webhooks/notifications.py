"""In-product notifications: the outbox events each member should act on or know of.

- `approval.requested`: approvals waiting in a stage the member manages;
- `backport.proposed`: back-ports waiting for a stage the member can edit;
- `promotion.succeeded`: promotions into a stage the member can edit.
Events the member caused themselves are left out. Read state is a per-member cursor.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Stage
from lifecycle.access import Access

from .models import NotificationState, OutboxEvent

# event -> (the data key naming the stage, the least stage role that should hear of it)
NOTIFYING = {
    "approval.requested": ("target_stage", "manager"),
    "backport.proposed": ("to_stage", "editor"),
    "promotion.succeeded": ("to_stage", "editor"),
}
KEEP_DAYS = 30


def _stage_keys(access: Access, minimum: str) -> list[str] | None:
    """Slugs and ids of the stages where the member holds `minimum`; None for all."""
    ids = access.stage_ids_with(minimum)
    if ids is None:
        return None
    stages = Stage.objects.for_org(access.org).filter(pk__in=ids).values_list("pk", "slug")
    return [key for pk, slug in stages for key in (str(pk), slug)]


def notifications_for(access: Access):
    """The member's notifications, newest first (the last KEEP_DAYS days)."""
    wanted = Q(pk__in=[])
    for event, (key, minimum) in NOTIFYING.items():
        keys = _stage_keys(access, minimum)
        if keys is None:
            wanted |= Q(event=event)
        elif keys:
            wanted |= Q(event=event, **{f"data__{key}__in": keys})
    since = timezone.now() - timedelta(days=KEEP_DAYS)
    email = access.user.email
    # "by" in rollouts' events; approvals name the requester as {"id", "email"}.
    mine = (Q(data__has_key="by") & Q(data__by=email)) | (
        Q(data__has_key="requested_by") & Q(data__requested_by__email=email)
    )
    return (
        OutboxEvent.objects.for_org(access.org)
        .filter(wanted, created_at__gte=since)
        .exclude(mine)
        .order_by("-created_at", "-id")
    )


def read_until(access: Access):
    state = NotificationState.objects.for_org(access.org).filter(user=access.user).first()
    return state.read_until if state else None


def unread_count(access: Access) -> int:
    seen = read_until(access)
    rows = notifications_for(access)
    if seen is not None:
        rows = rows.filter(created_at__gt=seen)
    return rows.count()


def notifications_mark_read(*, access: Access, until=None) -> None:
    """Everything up to `until` (now) is read. Not audited: it changes nothing of the org."""
    until = until or timezone.now()
    with transaction.atomic():
        state, _ = NotificationState.objects.for_org(access.org).get_or_create(
            org=access.org, user=access.user, defaults={"read_until": until}
        )
        if state.read_until is None or state.read_until < until:
            state.read_until = until
            state.save(update_fields=["read_until"])


def describe(row: OutboxEvent, org_slug: str) -> dict:
    """What the Notifications page shows of one event."""
    from .slack import TITLES, event_link

    data = row.data or {}
    link = _own_path(data.get("url"), org_slug) or event_link(org_slug, data)
    return {
        "id": row.pk,
        "event": row.event,
        "title": TITLES.get(row.event, row.event),
        "agent_name": data.get("agent_name") or "",
        "from_stage": data.get("from_stage") or "",
        "to_stage": data.get("to_stage") or data.get("target_stage") or "",
        "by": data.get("by") or "",
        "link": link[len(_base()) :] if link and link.startswith(_base()) else link,
        "created_at": row.created_at,
    }


def _base() -> str:
    from django.conf import settings

    return settings.PUBLIC_URL.rstrip("/")


def _own_path(url, org_slug: str) -> str | None:
    """An event's own page (approvals name theirs), if it is a path of this org."""
    if isinstance(url, str) and url.startswith(f"/orgs/{org_slug}/") and "//" not in url:
        return url
    return None
