"""The agent page's Tests tab: the lineage's suites and cases, edited in the browser, and
the one-click case from a stored conversation (the conversations page links here)."""

from __future__ import annotations

import json

from django.contrib import messages
from django.core.exceptions import ValidationError as DjangoValidationError
from django.shortcuts import redirect
from django.urls import reverse

from agents.hooks import AgentTab
from agents.models import Conversation
from agents.views import AgentMixin
from lifecycle.api import Member
from lifecycle.errors import DomainError, Invalid
from lifecycle.ui import OrgPage

from .models import TestCase, TestRun
from .selectors import suites_visible
from .services import suites as svc
from .services.test_runs import run_status

# Each suite on the Tests tab shows its latest few runs on this agent; the rest are on Test runs.
RECENT_RUNS = 3

EXAMPLE_TURNS = json.dumps(
    [{"user": "Where is my order?", "expect": [{"type": "contains", "value": "order"}]}], indent=2
)


def test_tabs(access, agent) -> list[AgentTab]:
    return [AgentTab("tests", "Tests", reverse("agent-tests", args=[agent.org.slug, agent.pk]))]


test_tabs.__test__ = False  # not a pytest function


class TestsPage(AgentMixin, OrgPage):
    """Suites of the agent's lineage with their cases; forms for suites and cases."""

    __test__ = False

    template_name = "rollouts/tests.html"
    nav = "agents"
    title = "Tests"
    # Anyone who sees the agent reads; the services decide who writes (first-stage editors,
    # managers of a stage holding the lineage), answering 403 otherwise.
    post_rule = Member()

    def get_context_data(self, error=None, posted=None, form=None, **kwargs):
        context = super().get_context_data(**kwargs)
        agent = self.agent
        suites = list(suites_visible(self.access).filter(lineage_id=agent.lineage_id))
        cases = {}
        for case in TestCase.objects.for_org(self.org).filter(suite__in=suites):
            cases.setdefault(case.suite_id, []).append(case)
        for suite in suites:
            # One small query per suite: a lineage has a handful of suites, and a shared
            # limit would starve a quiet suite of its rows.
            suite.recent_runs = [
                run
                for run in TestRun.objects.for_org(self.org)
                .filter(agent=agent, suite=suite)
                .select_related("operation")
                .order_by("-created_at")[:RECENT_RUNS]
            ]
            for run in suite.recent_runs:
                run.shown_status = run_status(run)
            suite.case_list = [
                {"case": c, "turns_json": json.dumps(c.turns, indent=2, ensure_ascii=False)}
                for c in cases.get(suite.pk, [])
            ]
        conversation = None
        wanted = self.request.GET.get("conversation") or (posted or {}).get("conversation")
        if wanted:
            try:
                conversation = Conversation.objects.for_org(self.org).filter(agent=agent, pk=wanted).first()
            except (ValueError, TypeError, DjangoValidationError):  # a malformed id: nothing to offer
                conversation = None
        context.update(
            self.agent_context("tests"),
            suites=suites,
            can_write=svc.suite_can_write(self.access, agent.lineage) and not agent.archived,
            can_run=self.access.has_stage_role(agent.stage_id, "editor") and not agent.archived,
            conversation=conversation,
            error=error,
            form=form,
            posted=posted or {},
            example_turns=EXAMPLE_TURNS,
        )
        return context

    def _suite(self, suite_id):
        try:
            suite = suites_visible(self.access).filter(pk=suite_id, lineage_id=self.agent.lineage_id).first()
        except (ValueError, TypeError, DjangoValidationError):  # a malformed id is a missing suite
            suite = None
        if suite is None:
            raise Invalid(fields={"suite": ["Choose a test suite of this agent."]})
        return suite

    def post(self, request, org, agent_id):
        op = request.POST.get("op", "")
        posted = {
            key: request.POST.get(key, "")[:200_000] for key in request.POST if key != "csrfmiddlewaretoken"
        }
        done = ""
        try:
            if op == "add_suite":
                svc.suite_create(
                    access=self.access,
                    lineage=self.agent.lineage,
                    name=posted.get("name", ""),
                    description=posted.get("description", ""),
                )
                done = f"Suite “{posted.get('name', '').strip()}” added."
            elif op == "archive_suite":
                suite = self._suite(posted.get("suite"))
                svc.suite_archive(access=self.access, suite=suite)
                done = f"Suite “{suite.name}” deleted."
            elif op in ("add_case", "edit_case"):
                suite = self._suite(posted.get("suite"))
                try:
                    turns = json.loads(posted.get("turns") or "null")
                except ValueError as exc:
                    raise Invalid(fields={"turns": [f"Not valid JSON: {exc}."]}) from None
                if op == "add_case":
                    svc.case_create(access=self.access, suite=suite, name=posted.get("name", ""), turns=turns)
                    done = "Case added."
                else:
                    svc.case_update(
                        access=self.access,
                        case=self._case(suite, posted.get("case")),
                        name=posted.get("name", ""),
                        turns=turns,
                    )
                    done = "Case saved."
            elif op == "delete_case":
                suite = self._suite(posted.get("suite"))
                svc.case_delete(access=self.access, case=self._case(suite, posted.get("case")))
                done = "Case deleted."
            elif op == "to_case":
                case = svc.case_from_conversation(
                    access=self.access,
                    agent=self.agent,
                    conversation_id=posted.get("conversation"),
                    suite_id=posted.get("suite"),
                    name=posted.get("name") or None,
                )
                done = f"Case “{case.name}” made from the conversation."
            else:
                raise Invalid("Unknown action.")
        except DomainError as exc:
            # Shown next to the form that was sent, with what was typed, so nothing is lost.
            status = 200 if exc.status_code in (400, 404) else exc.status_code
            form = {"op": op, "suite": posted.get("suite", ""), "case": posted.get("case", "")}
            return self.render_to_response(
                self.get_context_data(error=exc, posted=posted, form=form), status=status
            )
        messages.success(request, done)
        return redirect("agent-tests", org=self.org.slug, agent_id=self.agent.pk)

    def _case(self, suite, case_id) -> TestCase:
        try:
            case = (
                TestCase.objects.for_org(self.org)
                .filter(suite=suite, pk=case_id)
                .select_related("suite")
                .first()
            )
        except (ValueError, TypeError, DjangoValidationError):
            case = None
        if case is None:
            raise Invalid(fields={"case": ["No such case in this suite."]})
        return case
