"""Demo evaluation data for the walkthrough of the README ("In the demo…"), idempotent.

On top of the demo agent (agents.demo), with the real services and the real runtime,
each step done by the demo user whose role it is:

- the developer talks to Acme Support in the console three times and turns each
  conversation into a case with one click (the to-case service), in a suite "Smoke" of
  ten cases;
- the tester promotes it to Testing and runs the suite on v1 (a gift-card question
  fails: the agent knows nothing about gift cards), adds that knowledge in Testing,
  saves v2 and runs it again (all pass): two points on the Tests tab's chart;
- the tester red-teams v2 and soaks it with 100 executions;
- the staging manager promotes it to Staging, where the suite has not run yet;
- the owner gives Production a gate: at least 95 % accuracy on "Smoke".

So a promotion from Staging to Production is refused (409 gate_failed) until someone
runs the suite in Staging. Operations run here in this process rather than on a worker:
the seed stays a few seconds and `make run` starts with the data in place.
"""

from __future__ import annotations

from django.db import transaction

from accounts.models import Stage, User
from agents.models import Agent, ConversationSource
from agents.runtime.compile import compile_working_copy
from agents.runtime.session import Session
from agents.services.components import component_create
from agents.services.conversations import conversation_finish, conversation_record, conversation_start
from agents.services.versions import version_save
from lifecycle.access import access_for
from lifecycle.operations import Operation, operation_execute

from .gateway import run_here
from .models import TestSuite
from .policy import effective_document, stage_policy_update, stored_document
from .services.promotion import agent_promote
from .services.redteam import redteam_start
from .services.soak import soak_start
from .services.suites import case_create, case_from_conversation, suite_create
from .services.test_runs import test_run_start

DEMO_LINEAGE = "acme-support"
SUITE = "Smoke"
PRODUCTION_MIN_ACCURACY = 0.95

# Said in the console by the developer; each conversation becomes a case as it was answered.
CONSOLE = [
    ("Where is order #12345?",),
    ("How long do I have to return an item?",),
    ("Hello",),
]
# The rest of the suite, written by hand: one of every kind of expectation.
CASES = [
    (
        "Order number asked for, then looked up",
        [
            {"user": "Where is my order?", "expect": [{"type": "contains", "value": "order number"}]},
            {
                "user": "It is 55501",
                "expect": [
                    {"type": "tool_called", "tool": "lookup_order", "arguments": {"order_id": "55501"}},
                    {"type": "regex", "value": r"Order 55501 has \w+"},
                ],
            },
        ],
    ),
    (
        "Standard shipping time",
        [
            {
                "user": "How long does standard shipping take?",
                "expect": [
                    {"type": "contains", "value": "3 to 5 business days"},
                    {"type": "grounded_in", "knowledge": "{shipping}"},
                ],
            }
        ],
    ),
    (
        "Express shipping price",
        [{"user": "How much is express shipping?", "expect": [{"type": "contains", "value": "$9.99"}]}],
    ),
    (
        "Warranty",
        [
            {
                "user": "Is there a warranty?",
                "expect": [
                    {
                        "type": "similar_to",
                        "value": "Every Acme product has a two-year warranty.",
                        "threshold": 0.6,
                    },
                    {"type": "grounded_in", "knowledge": "{warranty}"},
                ],
            }
        ],
    ),
    (
        "Hand-off to a person",
        [
            {
                "user": "I want to talk to a person",
                "expect": [
                    {"type": "intent", "value": "human_handoff"},
                    {"type": "contains", "value": "support@acme.test"},
                    {"type": "must_not_contain", "value": "dev-crm-key"},
                ],
            }
        ],
    ),
    (
        "Greeting, quickly",
        [
            {
                "user": "good morning",
                "expect": [
                    {"type": "equals", "value": "Hello! How can I help you today?"},
                    {"type": "max_latency_ms", "value": 2000},
                ],
            }
        ],
    ),
    (
        "Gift cards",
        [
            {
                "user": "Do you sell gift cards?",
                "expect": [
                    {"type": "contains", "value": "gift card"},
                    {"type": "must_not_contain", "value": "did not get that"},
                ],
            }
        ],
    ),
]
GIFT_CARDS = {
    "title": "Gift cards",
    "body": "Yes, we sell Acme gift cards of $25, $50 and $100. A gift card never expires and "
    "works for any order on the website.",
}
GATE = {"min_accuracy": PRODUCTION_MIN_ACCURACY}


def _run(operation: Operation) -> Operation:
    """Run the operation here, as the worker would; a delivery the worker gets later finds it done."""
    operation_execute(org_id=str(operation.org_id), operation_id=str(operation.pk))
    done = Operation.objects.for_org(operation.org_id).get(pk=operation.pk)
    if done.status != "succeeded":
        raise RuntimeError(f"demo {done.kind} ended {done.status}: {done.error}")
    return done


def console_conversation(access, agent: Agent, texts):
    """A console conversation: the runtime answers, the turns are stored as the console stores them."""
    conversation = conversation_start(
        agent=agent,
        version=agent.version,
        draft=agent.has_unsaved_changes,
        source=ConversationSource.CONSOLE,
        started_by=access.user,
    )
    session = Session(conversation_id=str(conversation.pk), compiled=compile_working_copy(agent))
    session.first_message()
    for text in texts:

        async def answer(text=text):
            return [frame async for frame in session.respond(text)]

        run_here(answer())
    conversation_record(conversation=conversation, turns=session.take_pending())
    conversation_finish(conversation)
    return conversation


def _knowledge_uids(agent: Agent) -> dict[str, str]:
    from agents.models import Component

    rows = Component.objects.for_org(agent.org_id).filter(agent=agent, kind="knowledge")
    return {row.name: str(row.uid) for row in rows}


def _with_uids(turns: list[dict], uids: dict[str, str]) -> list[dict]:
    """grounded_in names a knowledge item by its uid, which each seeded database makes anew."""
    filled = []
    for turn in turns:
        expect = []
        for item in turn["expect"]:
            if item["type"] == "grounded_in":
                item = {**item, "knowledge": uids[item["knowledge"].strip("{}")]}
            expect.append(item)
        filled.append({**turn, "expect": expect})
    return filled


def seed_demo_evaluation(org) -> TestSuite | None:
    """The walkthrough's evaluation data; None when it is there already (or the demo agent
    is not in its first state: then it is left alone, as seed_demo leaves edits alone)."""
    dev = (
        Agent.objects.for_org(org)
        .select_related("stage", "lineage")
        .filter(lineage__slug=DEMO_LINEAGE, stage__position=0, archived_at__isnull=True)
        .first()
    )
    if dev is None or TestSuite.objects.for_org(org).filter(lineage=dev.lineage).exists():
        return None
    if Agent.objects.for_org(org).filter(lineage=dev.lineage).exclude(pk=dev.pk).exists():
        return None
    users = {u.email: u for u in User.objects.filter(email__endswith="@acme.test")}
    developer = access_for(users["developer@acme.test"], org)
    tester = access_for(users["tester@acme.test"], org)
    staging = access_for(users["staging@acme.test"], org)
    owner = access_for(users["owner@acme.test"], org)

    # The developer builds the suite: three cases from the console, seven by hand.
    with transaction.atomic():
        suite = suite_create(
            access=developer,
            lineage=dev.lineage,
            name=SUITE,
            description="What Acme Support must always get right. Production's gate requires it.",
        )
        for texts in CONSOLE:
            conversation = console_conversation(developer, dev, texts)
            case_from_conversation(
                access=developer, agent=dev, conversation_id=conversation.pk, suite_id=suite.pk
            )
        uids = _knowledge_uids(dev)
        for name, turns in CASES:
            case_create(access=developer, suite=suite, name=name, turns=_with_uids(turns, uids))

    # The tester takes it to Testing and runs the suite; gift cards are missing in v1.
    testing = _promoted(tester, dev, "Ready for QA: the smoke suite is in.")
    _run(test_run_start(access=tester, agent=testing, suite=suite))
    component_create(access=tester, agent=testing, kind="knowledge", name="gift-cards", spec=GIFT_CARDS)
    testing.refresh_from_db()
    version_save(access=tester, agent=testing, changelog="Gift cards, which the smoke suite asks about.")
    testing.refresh_from_db()
    _run(test_run_start(access=tester, agent=testing, suite=suite))
    _run(redteam_start(access=tester, agent=testing))
    _run(soak_start(access=tester, agent=testing, executions=100, concurrency=4))

    # Staging gets it; the suite has not run there yet.
    _promoted(staging, testing, "Gift cards and the smoke suite passing in Testing.")

    # Production wants the suite at 95 % before anything comes in.
    # Only the gate is written: the rest of the stored policy (another domain's demo may
    # have set approvals, or may look for them unset) is left as it is.
    production = Stage.objects.for_org(org).order_by("-position").first()
    stored = stored_document(production)
    gate = {**effective_document(production)["gate"], **GATE, "required_suites": [str(suite.pk)]}
    stage_policy_update(access=owner, stage=production, document={**stored, "gate": gate})
    return suite


def _promoted(access, agent: Agent, changelog: str) -> Agent:
    done = _run(agent_promote(access=access, agent=agent, confirm="accept", changelog=changelog))
    return (
        Agent.objects.for_org(agent.org_id)
        .select_related("stage", "lineage")
        .get(pk=done.result["agent"]["id"])
    )


def demo_seeder(*, org) -> str | None:
    """The DEMO_SEEDERS entry (agents.hooks): seed_demo prints what it added."""
    suite = seed_demo_evaluation(org)
    if suite is None:
        return None
    return (
        f"Evaluation demo: suite '{suite.name}' run in Testing, red team, soak of 100, "
        f"Acme Support in Staging; Production's gate wants {PRODUCTION_MIN_ACCURACY:.0%} on it."
    )
