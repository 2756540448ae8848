"""`{% frozen_notice stage %}`: "Frozen until …" where changes into a stage are started."""

from django import template

from ..decision import open_window
from ..policy import effective_document

register = template.Library()


@register.inclusion_tag("rollouts/_frozen.html")
def frozen_notice(stage):
    if stage is None:
        return {"window": None}
    return {"window": open_window(effective_document(stage)["freeze_windows"]), "stage": stage}


@register.inclusion_tag("rollouts/_freeze_override.html", takes_context=True)
def freeze_override(context, stage):
    """Inside a change's form: while the stage is frozen, owners and admins may give a reason
    to override the window (anyone else is refused by the service anyway)."""
    access = context.get("access")
    if stage is None or access is None or not access.is_admin:
        return {"window": None}
    posted = context.get("posted") or {}
    return {
        "window": open_window(effective_document(stage)["freeze_windows"]),
        "reason": (posted.get("override_freeze") or {}).get("reason", ""),
    }
