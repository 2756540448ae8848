import json

from django import template

register = template.Library()


@register.filter
def compact_json(value) -> str:
    """A change summary as one line of JSON (autoescaped by the template)."""
    if value in (None, "", {}, []):
        return ""
    return json.dumps(value, sort_keys=True, separators=(", ", ": "), default=str)


@register.filter
def percent(value) -> str:
    """A rate from 0 to 1 as a percentage: "0 %", "0.24 %", "12.5 %" (a small rate never reads as 0)."""
    if value is None or value == "":
        return "—"
    try:
        number = float(value) * 100
    except (TypeError, ValueError):
        return str(value)
    if number == 0:
        return "0 %"
    digits = 2 if number < 1 else 1
    return f"{round(number, digits):g} %"
