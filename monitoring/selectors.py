"""How alerts read: their statuses and their numbers as decimal strings."""

from __future__ import annotations

from decimal import Decimal

STATUSES = ("open", "resolved")
# Decimal places each metric's value is shown with (money in cents).
PLACES = {"spend": 2}


def number(value: Decimal, metric: str) -> str:
    """A value as a decimal string: money with cents, other metrics without trailing zeros."""
    places = PLACES.get(metric)
    if places is not None:
        return f"{value:.{places}f}"
    return f"{value.normalize():f}"
