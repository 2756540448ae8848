"""CSV cells that spreadsheets will not run as formulas (CSV injection).

A cell starting with `=`, `+`, `-`, `@`, tab or carriage return is read as a formula by
Excel, LibreOffice and Google Sheets; audit entries and pull previews carry text that
members typed (agent names, changelogs, emails), so every CSV the app writes goes
through `csv_row`. The OWASP fix: prefix such a cell with a single quote.
"""

from __future__ import annotations

from collections.abc import Iterable

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_row(values: Iterable) -> list[str]:
    return [csv_cell(value) for value in values]
