"""CSV cells that a spreadsheet would run as formulas are neutralized in every CSV."""

import csv
import io

import pytest

from lifecycle.csvsafe import csv_cell
from tests.factories import add_component, make_agent, promote, skill

pytestmark = pytest.mark.django_db

FORMULAS = ['=HYPERLINK("http://evil")', "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"]


def test_csv_cell_prefixes_formula_starts_only():
    for text in FORMULAS:
        assert csv_cell(text) == "'" + text
    assert csv_cell("plain = text") == "plain = text"
    assert csv_cell(None) == "" and csv_cell(3) == "3"


def _rows(content: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode(), newline="")))


def _no_formula(rows):
    for row in rows:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), row


def test_the_audit_csv_neutralizes_formulas(world):
    make_agent(world.acme, '=HYPERLINK("http://evil")')
    response = world.client("admin").get("/api/v1/orgs/acme/audit/", {"format": "csv"})
    rows = _rows(b"".join(response.streaming_content))
    assert any(cell == '\'=HYPERLINK("http://evil")' for row in rows for cell in row), rows
    _no_formula(rows)


def test_the_audit_export_neutralizes_formulas(world, on_commit):
    make_agent(world.acme, "@SUM(A1)")
    client = world.client("admin")
    accepted = on_commit(client.post, "/api/v1/orgs/acme/audit/exports/", {}, format="json")
    assert accepted.status_code == 202, accepted.content
    op = client.get(f"/api/v1/orgs/acme/operations/{accepted.json()['operation']['id']}/").json()
    rows = _rows(client.get(op["result"]["download"]).content)
    assert any(cell == "'@SUM(A1)" for row in rows for cell in row), rows
    _no_formula(rows)


def test_the_pull_preview_csv_neutralizes_formulas(world):
    dev_access = world.access("developer")
    dev = make_agent(world.acme, "Support", access=dev_access)
    testing = promote(dev, world.access("tester"))
    add_component(dev, "skill", "=cmd|' /C calc'!A0", skill(["hi"]), access=dev_access)
    response = world.client("tester").get(f"/api/v1/orgs/acme/agents/{testing.pk}/pull/?format=csv")
    assert response.status_code == 200, response.content
    rows = _rows(response.content)
    assert any(cell == "'=cmd|' /C calc'!A0" for row in rows for cell in row), rows
    _no_formula(rows)
