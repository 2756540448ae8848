"""A suite's cases as CSV: what export?format=csv writes, import reads back (all or nothing,
errors by CSV row and column)."""

import pytest

from rollouts.models import TestCase, TestSuite
from rollouts.services.suites import case_create
from tests.api_mixin import assert_envelope
from tests.factories import make_agent, owner_access

from .test_suites import make_suite, suites_url

HEADER = "case,turn,user,expectation\n"


def post_csv(world, agent, text, who="developer", name="From CSV", **extra):
    return world.client(who).post(
        suites_url(world.acme, "import/"),
        {"lineage": agent.lineage.slug, "name": name, "csv": text, **extra},
        format="json",
    )


def test_csv_export_then_import_round_trips_turns_and_expectations(world):
    agent = make_agent(world.acme)
    suite = make_suite(world.acme, agent, "Regression")
    owner = owner_access(world.acme)
    two_turns = [
        {"user": "Where is my order?", "expect": [{"type": "contains", "value": "number"}]},
        {
            "user": "=12345, quickly",  # formula-like: exported with a guard quote, read back without
            "expect": [
                {"type": "tool_called", "tool": "lookup", "arguments": {"order_id": "12345"}},
                {"type": "regex", "value": 'Order \\d+, "shipped"'},
            ],
        },
    ]
    case_create(access=owner, suite=suite, name="order, two turns", turns=two_turns)
    case_create(access=owner, suite=suite, name="no expectations", turns=[{"user": "Hi", "expect": []}])
    client = world.client("developer")
    exported = client.get(suites_url(world.acme, f"{suite.pk}/export/?format=csv")).content.decode()
    assert "'=12345" in exported
    made = post_csv(world, agent, exported, description="Round trip")
    assert made.status_code == 201, made.content
    copy = TestSuite.objects.for_org(world.acme).get(pk=made.json()["id"])
    assert (copy.name, copy.description) == ("From CSV", "Round trip")
    cases = list(TestCase.objects.for_org(world.acme).filter(suite=copy).order_by("position"))
    original = list(TestCase.objects.for_org(world.acme).filter(suite=suite).order_by("position"))
    assert [(c.name, c.turns) for c in cases] == [(c.name, c.turns) for c in original]


def test_a_hand_written_csv_with_blank_lines_and_rows_in_any_order(world):
    agent = make_agent(world.acme)
    text = (
        HEADER
        + 'greets,1,Hello,"{""type"": ""contains"", ""value"": ""Hi""}"\n'
        + "\n"
        + 'order,2,It is 7,"{""type"": ""contains"", ""value"": ""7""}"\n'
        + "order,1,Where is my order?,\n"
    )
    made = post_csv(world, agent, text)
    assert made.status_code == 201, made.content
    cases = {c.name: c.turns for c in TestCase.objects.for_org(world.acme).filter(suite_id=made.json()["id"])}
    assert cases["order"][0] == {"user": "Where is my order?", "expect": []}
    assert cases["order"][1]["expect"] == [{"type": "contains", "value": "7"}]


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("wrong,header\n", "csv"),
        ("", "csv"),
        (HEADER + "a,1,Hi\n", "csv.rows.2"),
        (HEADER + ",1,Hi,\n", "csv.rows.2.case"),
        (HEADER + "a,one,Hi,\n", "csv.rows.2.turn"),
        (HEADER + "a,0,Hi,\n", "csv.rows.2.turn"),
        (HEADER + "a,1,Hi,\na,3,Bye,\n", "csv.rows.2.turn"),
        (HEADER + 'a,1,Hi,\na,1,Hello,"{""type"":""contains"",""value"":""x""}"\n', "csv.rows.3.user"),
        (HEADER + "a,1,Hi,{not json\n", "csv.rows.2.expectation"),
        (
            HEADER + 'a,1,Hi,\nb,1,Hi,"{""type"":""similar_to"",""value"":""x"",""threshold"":2}"\n',
            "csv.rows.3.expectation",
        ),
        (HEADER + 'a,1,Hi,"{""type"":""nope""}"\n', "csv.rows.2.expectation"),
        (HEADER + 'a,1,Hi,"' + "[" * 5000 + '"\n', "csv.rows.2.expectation"),
        (HEADER + "a,1,,\n", "csv.rows.2.user"),
    ],
)
def test_a_bad_csv_names_the_row_and_column_and_writes_nothing(world, text, field):
    agent = make_agent(world.acme)
    fields = assert_envelope(post_csv(world, agent, text), 400, "invalid")["error"]["fields"]
    assert field in fields, fields
    assert not TestSuite.objects.for_org(world.acme).exists()


def test_either_document_or_csv_and_a_name_with_csv(world):
    agent = make_agent(world.acme)
    client = world.client("developer")
    url = suites_url(world.acme, "import/")
    lineage = agent.lineage.slug
    text = HEADER + "a,1,Hi,\n"
    assert_envelope(client.post(url, {"lineage": lineage}, format="json"), 400, "invalid")
    both = {"lineage": lineage, "csv": text, "document": {}, "name": "x"}
    assert_envelope(client.post(url, both, format="json"), 400, "invalid")
    assert_envelope(client.post(url, {"lineage": lineage, "csv": text}, format="json"), 400, "invalid")
    assert_envelope(client.post(url, {"lineage": lineage, "csv": ["a"], "name": "x"}, format="json"), 400)
    taken = make_suite(world.acme, agent, "Taken")
    assert "name" in assert_envelope(post_csv(world, agent, text, name="Taken"), 400)["error"]["fields"]
    assert TestSuite.objects.for_org(world.acme).get() == taken


def test_only_writers_import_and_another_orgs_lineage_is_missing(world):
    agent = make_agent(world.acme)
    text = HEADER + "a,1,Hi,\n"
    assert_envelope(post_csv(world, agent, text, who="viewer"), 403, "forbidden")
    theirs = make_agent(world.globex)
    foreign = world.client("owner").post(
        suites_url(world.acme, "import/"),
        {"lineage": theirs.lineage.slug, "name": "S", "csv": text},
        format="json",
    )
    assert_envelope(foreign, 400, "invalid")
    assert not TestSuite.objects.for_org(world.acme).exists()
    assert not TestSuite.objects.for_org(world.globex).exists()
