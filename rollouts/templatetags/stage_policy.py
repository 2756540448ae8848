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
