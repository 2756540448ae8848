"""Test suites and cases: validation with field paths, CRUD, who writes, import/export,
and one click from a stored conversation to a regression case."""

import asyncio
import csv
import io
import uuid

import pytest

from accounts.demo import seed_demo_org
from agents.demo import seed_demo_agent
from agents.models import Conversation
from agents.runtime.compile import CACHE, compile_working_copy
from agents.runtime.session import Session
from agents.services.conversations import conversation_record, conversation_start
from agents.tests.helpers import AgentChildTests
from lifecycle.audit import AuditEvent
from lifecycle.errors import Forbidden
from rollouts.api.suites import ConversationToCaseView, TestSuiteViewSet
from rollouts.models import TestCase, TestSuite
from rollouts.services.suites import case_create, suite_create
from rollouts.suite_schema import validate_turns
from tests.api_mixin import OrgScopedEndpointTests, assert_envelope
from tests.factories import make_agent, owner_access, promote

SUITES = "/api/v1/orgs/{org}/test-suites/"
TURNS = [{"user": "Hello", "expect": [{"type": "contains", "value": "Hi"}]}]


def make_suite(org, agent=None, name=None):
    agent = agent or make_agent(org)
    return suite_create(
        access=owner_access(org), lineage=agent.lineage, name=name or f"Suite of {agent.name}"
    )


def suites_url(org, tail=""):
    return SUITES.format(org=org.slug) + tail


# --- validation ------------------------------------------------------------------------
def test_every_expectation_type_validates_and_defaults_are_filled():
    turns = [
        {
            "user": "Where is order 1?",
            "expect": [
                {"type": "contains", "value": "order"},
                {"type": "equals", "value": "Order 1 shipped."},
                {"type": "regex", "value": r"order \d+"},
                {"type": "must_not_contain", "value": "sorry"},
                {"type": "similar_to", "value": "It shipped."},
                {"type": "intent", "value": "order_status"},
                {"type": "tool_called", "tool": "lookup_order", "arguments": {"order_id": "1"}},
                {"type": "grounded_in", "knowledge": "c0ffee00-0000-4000-8000-000000000001"},
                {"type": "max_latency_ms", "value": 2000},
            ],
        }
    ]
    clean, errors = validate_turns(turns)
    assert errors == {}
    assert clean[0]["expect"][4] == {"type": "similar_to", "value": "It shipped.", "threshold": 0.8}
    assert clean[0]["expect"][6]["arguments"] == {"order_id": "1"}
    assert validate_turns([{"user": "x", "expect": [{"type": "tool_called", "tool": "t"}]}])[0][0]["expect"][
        0
    ] == {"type": "tool_called", "tool": "t", "arguments": {}}


@pytest.mark.parametrize(
    ("turns", "path"),
    [
        ([], "turns"),
        ([{"user": "x"}] * 51, "turns"),
        ("not a list", "turns"),
        ([{"expect": []}], "turns.0.user"),
        ([{"user": ""}], "turns.0.user"),
        ([{"user": "x" * 4001}], "turns.0.user"),
        ([{"user": "x", "extra": 1}], "turns.0.extra"),
        ([{"user": "x", "expect": "contains"}], "turns.0.expect"),
        ([{"user": "x", "expect": [{"type": "nope", "value": "a"}]}], "turns.0.expect.0.type"),
        (
            [{"user": "x", "expect": [{"type": "contains", "value": "a", "vaule": 1}]}],
            "turns.0.expect.0.vaule",
        ),
        ([{"user": "x", "expect": [{"type": "contains"}]}], "turns.0.expect.0.value"),
        ([{"user": "x", "expect": [{"type": "regex", "value": "(?=a)b"}]}], "turns.0.expect.0.value"),
        ([{"user": "x", "expect": [{"type": "regex", "value": "(a"}]}], "turns.0.expect.0.value"),
        (
            [
                {
                    "user": "x",
                    "expect": [
                        {"type": "contains", "value": "a"},
                        {"type": "similar_to", "value": "a", "threshold": 1.5},
                    ],
                }
            ],
            "turns.0.expect.1.threshold",
        ),
        (
            [{"user": "x", "expect": [{"type": "similar_to", "value": "a", "threshold": "high"}]}],
            "turns.0.expect.0.threshold",
        ),
        (
            [{"user": "x", "expect": [{"type": "tool_called", "tool": "t", "arguments": []}]}],
            "turns.0.expect.0.arguments",
        ),
        ([{"user": "x", "expect": [{"type": "max_latency_ms", "value": 0}]}], "turns.0.expect.0.value"),
        ([{"user": "x", "expect": [{"type": "max_latency_ms", "value": True}]}], "turns.0.expect.0.value"),
        ([{"user": "x", "expect": [{"type": "grounded_in"}]}], "turns.0.expect.0.knowledge"),
        (
            [{"user": "ok"}, {"user": "x", "expect": [{"type": "intent", "value": ""}]}],
            "turns.1.expect.0.value",
        ),
    ],
)
def test_bad_turns_name_the_exact_path(turns, path):
    _, errors = validate_turns(turns)
    assert path in errors, errors


def test_bad_case_over_the_api_is_400_with_dotted_paths(world):
    suite = make_suite(world.acme)
    bad = [
        {"user": "x", "expect": [{"type": "contains", "value": "a"}, {"type": "regex", "value": "(?<!a)b"}]}
    ]
    response = world.client("owner").post(
        suites_url(world.acme, f"{suite.pk}/cases/"), {"name": "c", "turns": bad}, format="json"
    )
    body = assert_envelope(response, 400, "invalid")
    assert list(body["error"]["fields"]) == ["turns.0.expect.1.value"]
    assert "RE2" in body["error"]["fields"]["turns.0.expect.1.value"][0]
    assert not TestCase.objects.for_org(world.acme).exists()


# --- CRUD and who ----------------------------------------------------------------------
def test_suite_and_case_crud_through_the_api(world):
    agent = make_agent(world.acme)
    client = world.client("developer")  # a manager of development, the first stage
    made = client.post(
        suites_url(world.acme),
        {"lineage": agent.lineage.slug, "name": "Smoke", "description": "d"},
        format="json",
    )
    assert made.status_code == 201, made.content
    suite = made.json()
    assert suite["lineage"] == agent.lineage.slug and suite["case_count"] == 0
    duplicate = client.post(
        suites_url(world.acme), {"lineage": agent.lineage.slug, "name": "Smoke"}, format="json"
    )
    assert "name" in assert_envelope(duplicate, 400, "invalid")["error"]["fields"]

    cases = suites_url(world.acme, f"{suite['id']}/cases/")
    case = client.post(cases, {"name": "greets", "turns": TURNS}, format="json")
    assert case.status_code == 201, case.content
    cid = case.json()["id"]
    assert client.get(cases).json()["results"][0]["turns"] == TURNS
    patched = client.patch(cases + f"{cid}/", {"name": "says hi"}, format="json")
    assert patched.status_code == 200 and patched.json()["name"] == "says hi"
    assert client.get(cases + f"{cid}/").json()["name"] == "says hi"

    listed = client.get(suites_url(world.acme), {"lineage": agent.lineage.slug}).json()["results"]
    assert [s["case_count"] for s in listed] == [1]
    assert client.get(suites_url(world.acme), {"lineage": "other"}).json()["results"] == []

    assert client.delete(cases + f"{cid}/").status_code == 204
    assert client.get(cases + f"{cid}/").status_code == 404
    assert (
        client.patch(
            suites_url(world.acme, f"{suite['id']}/"), {"name": "Renamed"}, format="json"
        ).status_code
        == 200
    )
    assert client.delete(suites_url(world.acme, f"{suite['id']}/")).status_code == 204
    assert client.get(suites_url(world.acme, f"{suite['id']}/")).status_code == 404
    actions = set(AuditEvent.objects.for_org(world.acme).values_list("action", flat=True))
    assert {
        "test_suite.create",
        "test_suite.update",
        "test_suite.archive",
        "test_case.create",
        "test_case.update",
        "test_case.delete",
    } <= actions


def test_viewers_read_but_do_not_write(world):
    suite = make_suite(world.acme)
    viewer = world.client("viewer")
    assert viewer.get(suites_url(world.acme, f"{suite.pk}/")).status_code == 200
    assert_envelope(
        viewer.post(
            suites_url(world.acme, f"{suite.pk}/cases/"), {"name": "c", "turns": TURNS}, format="json"
        ),
        403,
        "forbidden",
    )
    assert_envelope(viewer.patch(suites_url(world.acme, f"{suite.pk}/"), {"name": "x"}, format="json"), 403)
    assert_envelope(viewer.delete(suites_url(world.acme, f"{suite.pk}/")), 403)
    assert_envelope(
        viewer.post(suites_url(world.acme), {"lineage": suite.lineage.slug, "name": "Mine"}, format="json"),
        403,
    )


def test_a_manager_of_a_later_stage_writes_and_a_member_without_a_role_does_not_see(world):
    dev = make_agent(world.acme)
    from agents.services.versions import version_save

    version_save(access=owner_access(world.acme), agent=dev, changelog="v1")
    promote(dev)  # now in testing too, where the tester is a manager
    suite = make_suite(world.acme, dev)
    tester = world.client("tester")
    made = tester.post(
        suites_url(world.acme, f"{suite.pk}/cases/"), {"name": "c", "turns": TURNS}, format="json"
    )
    assert made.status_code == 201, made.content
    # The tester is only a viewer of development: a lineage living only there is read-only.
    only_dev = make_suite(world.acme, name="Dev only")
    assert tester.get(suites_url(world.acme, f"{only_dev.pk}/")).status_code == 200
    with pytest.raises(Forbidden):
        from lifecycle.access import access_for

        case_create(
            access=access_for(world.users["tester"], world.acme), suite=only_dev, name="c", turns=TURNS
        )
    # A member without a stage role sees no agent, so no suite: missing, not forbidden.
    member = world.client("member")
    assert_envelope(member.get(suites_url(world.acme, f"{suite.pk}/")), 404, "not_found")
    assert member.get(suites_url(world.acme)).json()["results"] == []


def test_a_lineage_of_another_org_is_a_400_like_a_missing_one(world):
    theirs = make_agent(world.globex)
    client = world.client("owner")
    foreign = client.post(
        suites_url(world.acme), {"lineage": theirs.lineage.slug, "name": "S"}, format="json"
    )
    missing = client.post(suites_url(world.acme), {"lineage": "no-such-lineage", "name": "S"}, format="json")
    make_agent(world.acme, theirs.name)  # now acme has a lineage with the same slug: it is acme's
    assert (
        assert_envelope(foreign, 400, "invalid")["error"] == assert_envelope(missing, 400, "invalid")["error"]
    )


# --- import / export ---------------------------------------------------------------------
def test_export_then_import_round_trips(world):
    agent = make_agent(world.acme)
    suite = make_suite(world.acme, agent, "Regression")
    owner = owner_access(world.acme)
    turns = [
        {
            "user": "Where is order 7?",
            "expect": [{"type": "similar_to", "value": "Shipped.", "threshold": 0.7}],
        }
    ]
    case_create(access=owner, suite=suite, name="order", turns=turns, variables={"tier": "gold"})
    case_create(access=owner, suite=suite, name="greets", turns=TURNS)
    client = world.client("developer")
    document = client.get(suites_url(world.acme, f"{suite.pk}/export/")).json()
    assert document["format_version"] == 1 and document["name"] == "Regression"
    assert [c["name"] for c in document["cases"]] == ["order", "greets"]

    refused = client.post(
        suites_url(world.acme, "import/"),
        {"lineage": agent.lineage.slug, "document": document},
        format="json",
    )
    assert "name" in assert_envelope(refused, 400, "invalid")["error"]["fields"]  # the name is taken
    document["name"] = "Regression (copy)"
    made = client.post(
        suites_url(world.acme, "import/"),
        {"lineage": agent.lineage.slug, "document": document},
        format="json",
    )
    assert made.status_code == 201, made.content
    again = client.get(suites_url(world.acme, f"{made.json()['id']}/export/")).json()
    assert again == document


def test_a_bad_import_names_the_path_and_writes_nothing(world):
    agent = make_agent(world.acme)
    document = {
        "format_version": 1,
        "name": "Imported",
        "cases": [
            {"name": "ok", "turns": TURNS},
            {
                "name": "bad",
                "turns": [{"user": "x", "expect": [{"type": "similar_to", "value": "a", "threshold": 2}]}],
            },
        ],
    }
    response = world.client("owner").post(
        suites_url(world.acme, "import/"),
        {"lineage": agent.lineage.slug, "document": document},
        format="json",
    )
    fields = assert_envelope(response, 400, "invalid")["error"]["fields"]
    assert "document.cases.1.turns.0.expect.0.threshold" in fields
    assert not TestSuite.objects.for_org(world.acme).exists()


def test_csv_export_has_one_row_per_expectation_and_neutralizes_formulas(world):
    suite = make_suite(world.acme)
    turns = [
        {
            "user": '=HYPERLINK("http://evil")',
            "expect": [{"type": "contains", "value": "a"}, {"type": "equals", "value": "b"}],
        },
        {"user": "second", "expect": []},
    ]
    case_create(access=owner_access(world.acme), suite=suite, name="@cmd", turns=turns)
    response = world.client("owner").get(suites_url(world.acme, f"{suite.pk}/export/"), {"format": "csv"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["case", "turn", "user", "expectation"]
    assert len(rows) == 4  # two expectations of turn 1, and turn 2 without one
    assert all(not row[0].startswith(("=", "@")) and not row[2].startswith("=") for row in rows[1:])
    assert rows[1][3] == '{"type": "contains", "value": "a"}' and rows[3][1:] == ["2", "second", ""]


# --- one click: a conversation becomes a case ----------------------------------------------
@pytest.fixture
def demo(db):
    CACHE.clear()
    org, _ = seed_demo_org()
    return seed_demo_agent(org)


def console_conversation(agent, *texts) -> Conversation:
    """A real conversation: the runtime answers, and its turns are stored as the console does."""
    conversation = conversation_start(agent=agent, version=agent.version or 1, draft=True, source="console")
    session = Session(conversation_id=str(conversation.pk), compiled=compile_working_copy(agent))

    async def say(text):
        return [event async for event in session.respond(text)]

    for text in texts:
        asyncio.run(say(text))
    conversation_record(conversation=conversation, turns=session.take_pending())
    return conversation


def test_a_console_conversation_becomes_a_case_with_answers_and_tool_calls(demo):
    conversation = console_conversation(demo, "Where is order #12345?", "Hello")
    suite = make_suite(demo.org, demo, "From the console")
    from accounts.models import Membership

    owner = Membership.objects.for_org(demo.org).filter(role="owner").first().user
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(owner)
    url = f"/api/v1/orgs/{demo.org.slug}/agents/{demo.pk}/conversations/{conversation.pk}/to-case/"
    response = client.post(url, {"suite": str(suite.pk)}, format="json")
    assert response.status_code == 201, response.content
    case = response.json()
    assert case["source_conversation"] == str(conversation.pk)
    first, second = case["turns"]
    assert first["user"] == "Where is order #12345?" and second["user"] == "Hello"
    answers = list(conversation.turns.filter(role="agent").order_by("index").values_list("text", flat=True))
    assert {"type": "similar_to", "value": answers[0], "threshold": 0.8} in first["expect"]
    assert {"type": "tool_called", "tool": "lookup_order", "arguments": {"order_id": "12345"}} in first[
        "expect"
    ]
    assert [e["type"] for e in second["expect"]] == ["similar_to"]
    assert "Where is order #12345?" in case["name"]
    # The made case is valid as it stands: it can be saved back unchanged.
    assert validate_turns(case["turns"])[1] == {}

    named = client.post(url, {"suite": str(suite.pk), "name": "Order lookup"}, format="json")
    assert named.status_code == 201 and named.json()["name"] == "Order lookup"


def test_to_case_refuses_a_suite_of_another_lineage_and_hides_other_agents_conversations(world):
    agent, other = make_agent(world.acme), make_agent(world.acme)
    conversation = conversation_start(agent=agent, version=1, draft=True, source="console")
    conversation_record(conversation=conversation, turns=[{"index": 0, "role": "user", "text": "hi"}])
    client = world.client("owner")
    url = f"/api/v1/orgs/acme/agents/{agent.pk}/conversations/{conversation.pk}/to-case/"
    wrong = client.post(url, {"suite": str(make_suite(world.acme, other).pk)}, format="json")
    assert "suite" in assert_envelope(wrong, 400, "invalid")["error"]["fields"]
    assert_envelope(
        client.post(url, {"suite": "c0ffee00-0000-4000-8000-000000000001"}, format="json"), 400, "invalid"
    )
    # The conversation under another agent of the org is missing.
    elsewhere = f"/api/v1/orgs/acme/agents/{other.pk}/conversations/{conversation.pk}/to-case/"
    assert_envelope(
        client.post(elsewhere, {"suite": str(make_suite(world.acme, other, "2").pk)}, format="json"), 404
    )
    ok = client.post(url, {"suite": str(make_suite(world.acme, agent).pk)}, format="json")
    assert ok.status_code == 201 and ok.json()["turns"] == [{"user": "hi", "expect": []}]


# --- cross-tenant ----------------------------------------------------------------------
class TestSuitesTenancy(OrgScopedEndpointTests):
    views = (TestSuiteViewSet,)
    list_url = SUITES
    detail_url = SUITES + "{id}/"
    reader = "developer"
    forbidden = ("viewer", "PATCH", "detail", {"name": "Mine now"})
    etag_write = ("developer", "PATCH", {"name": "Renamed"})
    creator = "developer"
    create_payload = {"lineage": "agent-create", "name": "Smoke", "description": "d"}

    @pytest.fixture(autouse=True)
    def _lineage(self, world):
        make_agent(world.acme, "Agent Create")  # the lineage create_payload names

    def make_object(self, world, org):
        return str(make_suite(org).pk)


class TestCasesTenancy(OrgScopedEndpointTests):
    views = (TestSuiteViewSet,)
    list_url = SUITES + "{suite}/cases/"
    detail_url = SUITES + "{suite}/cases/{id}/"
    reader = "developer"
    forbidden = ("viewer", "POST", "list", {"name": "c", "turns": TURNS})
    etag_write = ("developer", "PATCH", {"name": "renamed"})
    creator = "developer"
    create_payload = {"name": "greets", "turns": TURNS}

    def suite_in(self, world, org):
        cache = world.__dict__.setdefault("_suites", {})
        if org.pk not in cache:
            cache[org.pk] = make_suite(org)
        return cache[org.pk]

    def path_kwargs(self, world, org):
        return {"suite": self.suite_in(world, org).pk}

    def make_object(self, world, org):
        return str(
            case_create(
                access=owner_access(org),
                suite=self.suite_in(world, org),
                name=f"case {uuid.uuid4().hex[:8]}",
                turns=TURNS,
            ).pk
        )

    def count(self, world):
        return TestCase.objects.for_org(world.acme).count()


class TestToCaseTenancy(AgentChildTests):
    views = (ConversationToCaseView,)
    list_url = "/api/v1/orgs/{org}/agents/{agent}/conversations/{id}/to-case/"
    probe = ("POST", {"suite": "c0ffee00-0000-4000-8000-000000000001"})
    listable = False
    reader = "developer"

    def make_object(self, world, org):
        conversation = conversation_start(
            agent=self.agent_in(world, org), version=1, draft=True, source="console"
        )
        conversation_record(conversation=conversation, turns=[{"index": 0, "role": "user", "text": "hi"}])
        return str(conversation.pk)

    def url(self, world, kind, org, lookup=None):
        # The conversation is part of the path: a missing one stands in when none is given.
        owner = org if hasattr(org, "slug") else world.acme
        return super().url(world, kind, org, lookup or self.make_object(world, owner))

    def test_a_foreign_conversation_under_own_agent_is_404(self, world):
        foreign = self.make_object(world, world.globex)
        url = self.list_url.format(org="acme", agent=self.agent_in(world, world.acme).pk, id=foreign)
        assert_envelope(world.client("owner").post(url, self.probe[1], format="json"), 404, "not_found")


# --- the Tests tab -------------------------------------------------------------------------
def test_the_tests_tab_lists_suites_adds_and_deletes_and_keeps_refused_input(world):
    from tests.factories import signed_in

    agent = make_agent(world.acme, "Support", access=world.access("developer"))
    developer = signed_in(world.users["developer"])
    url = f"/orgs/acme/agents/{agent.pk}/tests/"
    page = developer.get(url).content.decode()
    assert "No test suites yet." in page and 'href="/orgs/acme/agents/' in page and ">Tests<" in page

    assert developer.post(url, {"op": "add_suite", "name": "Smoke"}).status_code == 302
    suite = TestSuite.objects.for_org(world.acme).get(name="Smoke")
    bad = '[{"user": "hi", "expect": [{"type": "similar_to", "value": "x", "threshold": 7}]}]'
    refused = developer.post(url, {"op": "add_case", "suite": str(suite.pk), "name": "greets", "turns": bad})
    text = refused.content.decode()
    assert refused.status_code == 200
    assert "turns.0.expect.0.threshold" in text and "Give a number from 0 to 1." in text
    assert "&quot;threshold&quot;: 7" in text and 'value="greets"' in text  # what was typed is kept
    not_json = developer.post(url, {"op": "add_case", "suite": str(suite.pk), "name": "g", "turns": "[{"})
    assert "Not valid JSON" in not_json.content.decode()

    good = '[{"user": "hi", "expect": [{"type": "contains", "value": "Hi"}]}]'
    assert (
        developer.post(
            url, {"op": "add_case", "suite": str(suite.pk), "name": "greets", "turns": good}
        ).status_code
        == 302
    )
    page = developer.get(url).content.decode()
    assert "greets" in page and 'hx-confirm="Delete the case greets?"' in page
    case = TestCase.objects.for_org(world.acme).get(suite=suite)
    assert (
        developer.post(url, {"op": "delete_case", "suite": str(suite.pk), "case": str(case.pk)}).status_code
        == 302
    )
    assert not TestCase.objects.for_org(world.acme).exists()

    # A viewer reads, without forms; a write is refused.
    viewer = signed_in(world.users["viewer"])
    page = viewer.get(url).content.decode()
    assert "Smoke" in page and "Add a suite" not in page
    refused = viewer.post(url, {"op": "add_suite", "name": "Mine"})
    assert refused.status_code == 403
    assert not TestSuite.objects.for_org(world.acme).filter(name="Mine").exists()


def test_make_a_test_case_from_the_conversations_page(world):
    from tests.factories import signed_in

    agent = make_agent(world.acme, "Support", access=world.access("developer"))
    suite = make_suite(world.acme, agent, "From live")
    conversation = conversation_start(agent=agent, version=1, draft=True, source="console")
    conversation_record(
        conversation=conversation,
        turns=[
            {"index": 0, "role": "user", "text": "Where is order 9?"},
            {"index": 1, "role": "agent", "text": "Shipped."},
        ],
    )
    developer = signed_in(world.users["developer"])
    listing = developer.get(
        f"/orgs/acme/agents/{agent.pk}/conversations/?open={conversation.pk}"
    ).content.decode()
    link = f"/orgs/acme/agents/{agent.pk}/tests/?conversation={conversation.pk}#make-case"
    assert link in listing
    offer = developer.get(link.split("#")[0]).content.decode()
    assert "Make a test case from a conversation" in offer and "From live" in offer
    made = developer.post(
        f"/orgs/acme/agents/{agent.pk}/tests/",
        {"op": "to_case", "conversation": str(conversation.pk), "suite": str(suite.pk), "name": "Order 9"},
    )
    assert made.status_code == 302
    case = TestCase.objects.for_org(world.acme).get(suite=suite)
    assert case.name == "Order 9" and case.source_conversation_id == conversation.pk
    assert case.turns == [
        {
            "user": "Where is order 9?",
            "expect": [{"type": "similar_to", "value": "Shipped.", "threshold": 0.8}],
        }
    ]
