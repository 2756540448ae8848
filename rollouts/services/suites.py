"""Test suites and their cases: the regression evidence of a lineage (issue 9).

Suites belong to a lineage, not to one stage's agent, so they follow the agent through the
stages. Who writes: an editor of the lineage's first stage (where the agent is built), or a
manager of any stage where the lineage has an agent (a tester in Staging adds the case
that caught a problem there). Anyone who can see an agent of the lineage reads them
(`rollouts.selectors.suites_visible`). Every write is audited.
"""

from __future__ import annotations

import csv
import io
import json
import re

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from accounts.models import Stage
from agents.models import Agent, Conversation, Lineage
from lifecycle.access import Access
from lifecycle.audit import audit_record
from lifecycle.csvsafe import FORMULA_STARTS
from lifecycle.errors import Forbidden, Invalid, NotFound

from ..models import TestCase, TestSuite
from ..selectors import suites_visible
from ..suite_schema import validate_turns

FORMAT_VERSION = 1
MAX_CASES_PER_IMPORT = 500
SIMILAR_THRESHOLD = 0.8


# --- who -------------------------------------------------------------------------------
def suite_can_write(access: Access, lineage: Lineage) -> bool:
    if access.is_admin:
        return True
    first = Stage.objects.for_org(access.org).order_by("position").first()
    stage_ids = set(
        Agent.objects.for_org(access.org)
        .filter(lineage=lineage, archived_at__isnull=True)
        .values_list("stage_id", flat=True)
    )
    if first is not None and first.pk in stage_ids and access.has_stage_role(first, "editor"):
        return True
    return any(access.has_stage_role(stage_id, "manager") for stage_id in stage_ids)


def _require_writer(access: Access, lineage: Lineage) -> None:
    if not suite_can_write(access, lineage):
        raise Forbidden(
            "Editors of the first stage, or managers of a stage where this agent is, change its tests."
        )


def lineage_for(access: Access, slug) -> Lineage:
    """The lineage named by `slug` that the caller can see; 400 as a field error otherwise,
    the same for another org's lineage as for one that does not exist."""
    lineage = None
    if isinstance(slug, str) and slug:
        lineage = Lineage.objects.for_org(access.org).filter(slug=slug).first()
    if (
        lineage is not None
        and not access.visible(Agent.objects.for_org(access.org).filter(lineage=lineage)).exists()
    ):
        lineage = None
    if lineage is None:
        raise Invalid(fields={"lineage": ["No such agent lineage."]})
    return lineage


# --- suites ----------------------------------------------------------------------------
def _suite_fields(name, description) -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    if name is not None and (not isinstance(name, str) or not name.strip() or len(name) > 120):
        fields["name"] = ["Give a name of 1 to 120 characters."]
    if description is not None and (not isinstance(description, str) or len(description) > 5000):
        fields["description"] = ["At most 5000 characters."]
    return fields


def _name_taken(what: str):
    return Invalid(fields={"name": [f"A {what} with this name exists already."]})


def suite_create(*, access: Access, lineage: Lineage, name: str, description: str = "") -> TestSuite:
    _require_writer(access, lineage)
    fields = _suite_fields(name, description)
    if fields:
        raise Invalid(fields=fields)
    try:
        with transaction.atomic():
            suite = TestSuite.objects.create(
                org=access.org,
                lineage=lineage,
                name=name.strip(),
                description=description,
                created_by=access.user,
            )
            audit_record(
                org=access.org,
                actor=access.user,
                action="test_suite.create",
                target=suite,
                target_repr=f"{lineage.slug}: {suite.name}",
            )
    except IntegrityError:
        raise _name_taken("suite") from None
    return suite


def suite_update(*, access: Access, suite: TestSuite, name=None, description=None) -> TestSuite:
    _require_writer(access, suite.lineage)
    fields = _suite_fields(name, description)
    if fields:
        raise Invalid(fields=fields)
    changes = {}
    if name is not None and name.strip() != suite.name:
        changes["name"] = [suite.name, name.strip()]
        suite.name = name.strip()
    if description is not None and description != suite.description:
        changes["description"] = "changed"
        suite.description = description
    if not changes:
        return suite
    try:
        with transaction.atomic():
            suite.save(update_fields=["name", "description", "updated_at"])
            audit_record(
                org=access.org, actor=access.user, action="test_suite.update", target=suite, changes=changes
            )
    except IntegrityError:
        raise _name_taken("suite") from None
    return suite


def suite_archive(*, access: Access, suite: TestSuite) -> TestSuite:
    """Archived, not deleted: the runs made from it keep pointing at it."""
    _require_writer(access, suite.lineage)
    with transaction.atomic():
        suite.archived_at = timezone.now()
        suite.save(update_fields=["archived_at", "updated_at"])
        audit_record(org=access.org, actor=access.user, action="test_suite.archive", target=suite)
    return suite


# --- cases -----------------------------------------------------------------------------
def _case_fields(name, variables, turns, *, prefix: str = "") -> tuple[list, dict]:
    fields: dict[str, list[str]] = {}
    if name is not None and (not isinstance(name, str) or not name.strip() or len(name) > 200):
        fields[f"{prefix}name"] = ["Give a name of 1 to 200 characters."]
    if variables is not None and (
        not isinstance(variables, dict)
        or not all(isinstance(v, (str, int, float, bool)) for v in variables.values())
    ):
        fields[f"{prefix}variables"] = ["Give an object of names to plain values."]
    clean = []
    if turns is not None:
        clean, errors = validate_turns(turns, prefix=f"{prefix}turns")
        fields.update(errors)
    return clean, fields


def case_create(
    *,
    access: Access,
    suite: TestSuite,
    name: str,
    turns,
    variables=None,
    source_conversation: Conversation | None = None,
) -> TestCase:
    _require_writer(access, suite.lineage)
    clean, fields = _case_fields(name if name is not None else "", variables, turns)
    if turns is None:
        fields["turns"] = ["This field is required."]
    if fields:
        raise Invalid(fields=fields)
    try:
        with transaction.atomic():
            # Locked so two cases added at once get distinct positions.
            TestSuite.objects.for_org(access.org).select_for_update().filter(pk=suite.pk).first()
            last = TestCase.objects.for_org(access.org).filter(suite=suite).aggregate(m=Max("position"))["m"]
            case = TestCase.objects.create(
                org=access.org,
                suite=suite,
                name=name.strip(),
                variables=variables or {},
                turns=clean,
                position=(last or 0) + 1,
                source_conversation=source_conversation,
            )
            audit_record(
                org=access.org,
                actor=access.user,
                action="test_case.create",
                target=case,
                target_repr=f"{suite.name}: {case.name}",
                changes={"turns": len(clean), "from_conversation": str(source_conversation.pk)}
                if source_conversation
                else {"turns": len(clean)},
            )
    except IntegrityError:
        raise _name_taken("case in this suite") from None
    return case


def case_update(*, access: Access, case: TestCase, name=None, variables=None, turns=None) -> TestCase:
    _require_writer(access, case.suite.lineage)
    clean, fields = _case_fields(name, variables, turns)
    if fields:
        raise Invalid(fields=fields)
    changed = []
    if name is not None and name.strip() != case.name:
        case.name = name.strip()
        changed.append("name")
    if variables is not None and variables != case.variables:
        case.variables = variables
        changed.append("variables")
    if turns is not None and clean != case.turns:
        case.turns = clean
        changed.append("turns")
    if not changed:
        return case
    try:
        with transaction.atomic():
            case.save(update_fields=[*changed, "updated_at"])
            audit_record(
                org=access.org,
                actor=access.user,
                action="test_case.update",
                target=case,
                target_repr=f"{case.suite.name}: {case.name}",
                changes={"fields": changed},
            )
    except IntegrityError:
        raise _name_taken("case in this suite") from None
    return case


def case_delete(*, access: Access, case: TestCase) -> None:
    _require_writer(access, case.suite.lineage)
    with transaction.atomic():
        audit_record(
            org=access.org,
            actor=access.user,
            action="test_case.delete",
            target=case,
            target_repr=f"{case.suite.name}: {case.name}",
        )
        case.delete()


# --- import / export -------------------------------------------------------------------
def suite_export(suite: TestSuite) -> dict:
    cases = TestCase.objects.for_org(suite.org_id).filter(suite=suite)
    return {
        "format_version": FORMAT_VERSION,
        "name": suite.name,
        "description": suite.description,
        "cases": [{"name": c.name, "variables": c.variables, "turns": c.turns} for c in cases],
    }


def suite_export_rows(suite: TestSuite) -> list[list[str]]:
    """CSV rows (header first): one row per expectation, or per turn that has none."""
    rows = [["case", "turn", "user", "expectation"]]
    for case in TestCase.objects.for_org(suite.org_id).filter(suite=suite):
        for index, turn in enumerate(case.turns):
            for expectation in turn.get("expect") or [None]:
                rows.append(
                    [
                        case.name,
                        str(index + 1),
                        turn.get("user", ""),
                        json.dumps(expectation, ensure_ascii=False) if expectation else "",
                    ]
                )
    return rows


def suite_import(*, access: Access, lineage: Lineage, document) -> TestSuite:
    """A whole suite from an exported document, in one transaction: all or nothing."""
    _require_writer(access, lineage)
    if not isinstance(document, dict):
        raise Invalid(fields={"document": ['Give the exported object {"format_version","name","cases"}.']})
    fields: dict[str, list[str]] = {}
    for key in document:
        if key not in ("format_version", "name", "description", "cases"):
            fields[f"document.{key}"] = ["Unknown field."]
    if document.get("format_version") != FORMAT_VERSION:
        fields["document.format_version"] = [f"Only format_version {FORMAT_VERSION} is read."]
    name, description = document.get("name"), document.get("description", "")
    for key, messages in _suite_fields(name if name is not None else "", description).items():
        fields[f"document.{key}"] = messages
    cases = document.get("cases", [])
    if not isinstance(cases, list) or len(cases) > MAX_CASES_PER_IMPORT:
        fields["document.cases"] = [f"Give a list of at most {MAX_CASES_PER_IMPORT} cases."]
        cases = []
    clean_cases, names = [], set()
    for i, case in enumerate(cases):
        prefix = f"document.cases.{i}."
        if not isinstance(case, dict):
            fields[prefix[:-1]] = ['Each case is {"name","variables","turns"}.']
            continue
        for key in case:
            if key not in ("name", "variables", "turns"):
                fields[f"{prefix}{key}"] = ["Unknown field."]
        clean, errors = _case_fields(
            case.get("name", ""), case.get("variables", {}), case.get("turns"), prefix=prefix
        )
        if case.get("turns") is None:
            errors[f"{prefix}turns"] = ["This field is required."]
        if isinstance(case.get("name"), str) and case["name"].strip() in names:
            errors[f"{prefix}name"] = ["Two cases have this name."]
        fields.update(errors)
        if not errors:
            names.add(case["name"].strip())
            clean_cases.append((case["name"].strip(), case.get("variables") or {}, clean))
    if fields:
        raise Invalid(fields=fields)
    with transaction.atomic():
        suite = suite_create(access=access, lineage=lineage, name=name, description=description)
        TestCase.objects.bulk_create(
            TestCase(org=access.org, suite=suite, name=n, variables=v, turns=t, position=i + 1)
            for i, (n, v, t) in enumerate(clean_cases)
        )
        audit_record(
            org=access.org,
            actor=access.user,
            action="test_suite.import",
            target=suite,
            changes={"cases": len(clean_cases)},
        )
    return suite


# --- one click: a conversation becomes a case ------------------------------------------
def conversation_turns_as_case(conversation: Conversation) -> list[dict]:
    """Each user turn, expecting the recorded answer (`similar_to`) and tool calls."""
    turns: list[dict] = []
    for turn in conversation.turns.order_by("index"):
        if turn.role == "user":
            turns.append({"user": turn.text, "expect": []})
        elif turn.role == "agent" and turns:
            expect = turns[-1]["expect"]
            if turn.text.strip():
                expect.append({"type": "similar_to", "value": turn.text, "threshold": SIMILAR_THRESHOLD})
            for event in (turn.details or {}).get("tools") or []:
                if event.get("type") == "tool_call" and event.get("tool_name"):
                    arguments = event.get("parameters")
                    expect.append(
                        {
                            "type": "tool_called",
                            "tool": event["tool_name"],
                            "arguments": arguments if isinstance(arguments, dict) else {},
                        }
                    )
    return [t for t in turns if t["user"].strip()][:50]


def case_from_conversation(
    *, access: Access, agent: Agent, conversation_id, suite_id, name: str | None = None
) -> TestCase:
    try:
        conversation = (
            Conversation.objects.for_org(access.org).filter(agent=agent, pk=conversation_id).first()
        )
    except (ValueError, TypeError, DjangoValidationError):
        conversation = None
    if conversation is None:
        raise NotFound()
    suite = None
    try:
        suite = suites_visible(access).filter(pk=suite_id).first() if suite_id else None
    except (ValueError, TypeError, DjangoValidationError):  # a malformed id is a missing one
        suite = None
    if suite is None or suite.lineage_id != agent.lineage_id:
        raise Invalid(fields={"suite": ["Choose a test suite of this agent."]})
    turns = conversation_turns_as_case(conversation)
    if not turns:
        raise Invalid("This conversation has no user turn to make a case of.")
    if name is None or not str(name).strip():
        first = turns[0]["user"].strip().splitlines()[0]
        name = f"{first[:60]} ({conversation.source}, {conversation.started_at:%Y-%m-%d %H:%M})"
    return case_create(access=access, suite=suite, name=name, turns=turns, source_conversation=conversation)


# --- CSV import: the rows export writes, read back ------------------------------------
CSV_HEADER = ["case", "turn", "user", "expectation"]
MAX_CSV_ROWS = 5000
_CASE_PATH = re.compile(r"^document\.cases\.(\d+)(?:\.(.*))?$")
_TURN_PATH = re.compile(r"^turns\.(\d+)(?:\.(.*))?$")


def _uncell(text: str) -> str:
    """Undo export's formula guard: a quote put before a formula-like start is dropped."""
    return text[1:] if text.startswith("'") and text[1:].startswith(FORMULA_STARTS) else text


def suite_import_csv(*, access: Access, lineage: Lineage, name, description="", text) -> TestSuite:
    """A suite from the CSV export writes (case, turn, user, expectation as JSON; one row per
    expectation, or per turn without one), all or nothing. Errors name the CSV row (the
    header is row 1) and column, as `csv.rows.<n>.<column>`."""
    _require_writer(access, lineage)
    if not isinstance(text, str):
        raise Invalid(fields={"csv": ["Give the CSV as text."]})
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        raise Invalid(fields={"csv": [f"Not readable as CSV: {exc}."]}) from None
    if not rows or [cell.strip().lower() for cell in rows[0]] != CSV_HEADER:
        raise Invalid(fields={"csv": [f"The first row must be the header {','.join(CSV_HEADER)}."]})
    if len(rows) > MAX_CSV_ROWS + 1:
        raise Invalid(fields={"csv": [f"At most {MAX_CSV_ROWS} rows."]})
    fields: dict[str, list[str]] = {}
    cases: dict[str, dict] = {}  # name -> {"turns": {number: {"user","expect","row"}}, "row"}
    where: dict[tuple, int] = {}  # (case index, turn index, expectation index or field) -> row
    for number, row in enumerate(rows[1:], start=2):
        path = f"csv.rows.{number}"
        if not any(cell.strip() for cell in row):
            continue  # a blank line
        if len(row) != len(CSV_HEADER):
            fields[path] = [f"Expected {len(CSV_HEADER)} cells, got {len(row)}."]
            continue
        case_name, turn, user, expectation = (_uncell(cell) for cell in row)
        if not case_name.strip():
            fields[f"{path}.case"] = ["Name the case."]
            continue
        if not turn.strip().isdigit() or int(turn) < 1:
            fields[f"{path}.turn"] = ["A turn number from 1."]
            continue
        case = cases.setdefault(case_name.strip(), {"turns": {}, "row": number})
        entry = case["turns"].setdefault(int(turn), {"user": user, "expect": [], "row": number})
        if entry["user"] != user:
            fields[f"{path}.user"] = [f"Turn {turn} of this case says something else in row {entry['row']}."]
            continue
        if expectation.strip():
            try:
                parsed = json.loads(expectation)
            except (ValueError, RecursionError):
                fields[f"{path}.expectation"] = ['Not valid JSON: give one expectation such as {"type": …}.']
                continue
            entry["expect"].append((parsed, number))
    document_cases = []
    for c_index, (case_name, case) in enumerate(cases.items()):
        numbers = sorted(case["turns"])
        if numbers != list(range(1, len(numbers) + 1)):
            gaps = f"The turns of {case_name!r} must run 1, 2, 3 … without gaps."
            fields[f"csv.rows.{case['row']}.turn"] = [gaps]
            continue
        turns = []
        for t_index, number in enumerate(numbers):
            entry = case["turns"][number]
            where[(c_index, t_index, "user")] = entry["row"]
            for e_index, (_, row_number) in enumerate(entry["expect"]):
                where[(c_index, t_index, e_index)] = row_number
            turns.append({"user": entry["user"], "expect": [item for item, _ in entry["expect"]]})
        where[(c_index, "case")] = case["row"]
        document_cases.append({"name": case_name, "turns": turns})
    if fields:
        raise Invalid(fields=fields)
    document = {
        "format_version": FORMAT_VERSION,
        "name": name if name is not None else "",
        "description": description or "",
        "cases": document_cases,
    }
    try:
        return suite_import(access=access, lineage=lineage, document=document)
    except Invalid as exc:
        raise Invalid(exc.message, fields=_csv_paths(exc.fields, where)) from None


def _csv_paths(fields: dict, where: dict) -> dict:
    """The document's error paths as CSV rows and columns, so a reader finds the cell."""
    placed: dict[str, list[str]] = {}
    for path, messages in fields.items():
        target = path.removeprefix("document.") if path in ("document.name", "document.description") else None
        match = _CASE_PATH.match(path)
        if match and target is None:
            c_index, rest = int(match.group(1)), match.group(2) or ""
            turn = _TURN_PATH.match(rest)
            if turn:
                t_index, tail = int(turn.group(1)), (turn.group(2) or "").split(".")
                if tail[0] == "expect" and len(tail) > 1 and tail[1].isdigit():
                    row = where.get((c_index, t_index, int(tail[1])))
                    target = f"csv.rows.{row}.expectation" if row else None
                    messages = [f"{'.'.join(tail[2:])}: {m}" if tail[2:] else m for m in messages]
                else:
                    row = where.get((c_index, t_index, "user"))
                    target = f"csv.rows.{row}.user" if row else None
            elif (c_index, "case") in where:
                target = f"csv.rows.{where[(c_index, 'case')]}.case"
        placed.setdefault(target or path, []).extend(messages)
    return placed
