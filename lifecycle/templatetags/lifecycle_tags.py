import json

from django import template

register = template.Library()


@register.filter
def compact_json(value) -> str:
    """A change summary as one line of JSON (autoescaped by the template)."""
    if value in (None, "", {}, []):
        return ""
    return json.dumps(value, sort_keys=True, separators=(", ", ": "), default=str)
