"""`{% frozen_notice stage %}`: "Frozen until …" (or "Freezes from … until …", within the
next 7 days) where changes into a stage are started, and on the stage's own pages."""

from django import template
from django.utils.dateparse import parse_datetime

from ..decision import open_window, upcoming_window
from ..policy import effective_document

register = template.Library()


def _with_times(window: dict | None) -> dict | None:
    """The window with its instants as datetimes, for the `date` filter."""
    if window is None:
        return None
    shown = dict(window)
    for key in ("starts_at", "ends_at"):
        if key in window:
            shown[f"{key}_time"] = parse_datetime(window[key])
    return shown


def freeze_status(stage, windows: list[dict] | None = None) -> dict:
    """{"window": open now or None, "upcoming": the next within 7 days or None}."""
    if windows is None:
        windows = effective_document(stage)["freeze_windows"]
    active = open_window(windows)
    return {
        "window": _with_times(active),
        "upcoming": None if active else _with_times(upcoming_window(windows)),
        "stage": stage,
    }


@register.inclusion_tag("rollouts/_frozen.html")
def frozen_notice(stage):
    if stage is None:
        return {"window": None, "upcoming": None}
    return freeze_status(stage)


@register.inclusion_tag("rollouts/_freeze_override.html", takes_context=True)
def freeze_override(context, stage, suffix=""):
    """Inside a change's form: while the stage is frozen, owners and admins may give a reason
    to override the window (anyone else is refused by the service anyway)."""
    access = context.get("access")
    if stage is None or access is None or not access.is_admin:
        return {"window": None}
    posted = context.get("posted") or {}
    return {
        "window": _with_times(open_window(effective_document(stage)["freeze_windows"])),
        "reason": (posted.get("override_freeze") or {}).get("reason", ""),
        "suffix": f"-{suffix}" if suffix else "",  # several forms on one page (back-ports)
    }
