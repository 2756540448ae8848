"""Which database constraint an IntegrityError broke, by the constraint's name.

Matching the error's text ("unique", "duplicate") takes any violation for the one a
caller expects: a NOT NULL or foreign-key failure would be answered as a 409 race.
"""

from __future__ import annotations

import re
from functools import cache

from django.apps import apps
from django.db import IntegrityError, models


def constraint_violated(exc: IntegrityError, name: str) -> bool:
    """True when `exc` is a violation of the constraint called `name`."""
    diag = getattr(exc.__cause__, "diag", None)
    if diag is not None:  # psycopg names the constraint
        return getattr(diag, "constraint_name", None) == name
    # SQLite names no constraint: "UNIQUE constraint failed: table.a, table.b", or
    # "UNIQUE constraint failed: index 'name'" for an index over expressions.
    message = str(exc)
    match = re.match(r"UNIQUE constraint failed: (.+)$", message.strip())
    if match is None:
        return False
    failed = match.group(1).strip()
    if failed == f"index '{name}'":
        return True
    columns = _unique_columns(name)
    return columns is not None and tuple(part.strip() for part in failed.split(",")) == columns


@cache
def _unique_columns(name: str) -> tuple[str, ...] | None:
    """("table.column", ...) of the unique constraint called `name`, as SQLite lists them."""
    for model in apps.get_models():
        for constraint in model._meta.constraints:
            if constraint.name == name and isinstance(constraint, models.UniqueConstraint):
                if not constraint.fields:
                    return None  # an expression index: only its name identifies it
                table = model._meta.db_table
                return tuple(f"{table}.{model._meta.get_field(f).column}" for f in constraint.fields)
    return None
