"""The agent's Test runs tab: run a suite, follow it, read the results per case, and the
accuracy of each stage over its versions as a chart (Chart.js, served from our static files)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.http import Http404
from django.shortcuts import redirect
from django.urls import reverse

from agents.hooks import AgentTab
from agents.models import Agent
from agents.selectors import versions_of
from agents.views import AgentMixin
from lifecycle.api import ObjectAction
from lifecycle.errors import DomainError, Invalid
from lifecycle.ui import OrgPage

from .evaluators import SAFETY_CATEGORIES
from .models import EvaluationStatus, TestRun, TestSuite
from .selectors import safety_by_version
from .services.evaluation import DRAFT
from .services.test_runs import run_status, test_run_start

__test__ = False  # named test_*, but not a test module: pytest collects nothing here


def test_run_tabs(access, agent) -> list[AgentTab]:
    return [AgentTab("test-runs", "Test runs", reverse("agent-test-runs", args=[agent.org.slug, agent.pk]))]


def accuracy_series(access, agent: Agent) -> list[dict]:
    """Per stage of the lineage (agents the caller can see): the latest finished run's
    accuracy on each saved version, in version order: [{"stage","points":[{"x","y"}]}]."""
    agents = access.visible(Agent.objects.for_org(agent.org_id).filter(lineage_id=agent.lineage_id))
    runs = (
        TestRun.objects.for_org(agent.org_id)
        .filter(agent__in=agents, status=EvaluationStatus.SUCCEEDED, version__isnull=False)
        .order_by("stage__position", "version", "-finished_at")
        .values_list("stage__name", "version", "accuracy")
    )
    series: dict[str, dict[int, float]] = {}
    for stage, version, accuracy in runs:
        series.setdefault(stage, {}).setdefault(version, accuracy)
    return [
        {"stage": stage, "points": [{"x": v, "y": a} for v, a in sorted(points.items())]}
        for stage, points in series.items()
    ]


class TestRunsPage(AgentMixin, OrgPage):
    """Runs of the lineage's suites on this agent, a Run form, and accuracy over versions."""

    __test__ = False
    template_name = "rollouts/test_runs.html"
    nav = "agents"
    title = "Test runs"
    # Anyone who sees the agent reads its runs; running takes the editor role (the service says).
    post_rule = ObjectAction("change")

    def get_context_data(self, error=None, posted=None, **kwargs):
        context = super().get_context_data(**kwargs)
        agent = self.agent
        context.update(
            self.agent_context("test-runs"),
            suites=list(
                TestSuite.objects.for_org(agent.org_id).filter(
                    lineage_id=agent.lineage_id, archived_at__isnull=True
                )
            ),
            versions=list(versions_of(agent)[:200]),
            runs=_shown(
                TestRun.objects.for_org(agent.org_id)
                .filter(agent=agent)
                .select_related("suite", "created_by", "operation")
                .order_by("-created_at")[:100]
            ),
            can_run=self.access.has_stage_role(agent.stage_id, "editor") and not agent.archived,
            series=accuracy_series(self.access, agent),
            sample_rate=settings.SAFETY_LIVE_SAMPLE_RATE,
            safety_categories=[c.replace("_", "-").capitalize() for c in SAFETY_CATEGORIES],
            safety=[
                {**entry, "live_rates": _rates(entry["live"]), "run_rates": _rates(entry["test_run"])}
                for entry in safety_by_version(agent)
            ],
            error=error,
            posted=posted or {"suite": "", "version": str(agent.version)},
        )
        return context

    def post(self, request, org, agent_id):
        posted = {"suite": request.POST.get("suite", ""), "version": request.POST.get("version", "")}
        try:
            version = DRAFT if posted["version"] == DRAFT else posted["version"]
            if version != DRAFT:
                if not version.isdigit():
                    raise Invalid(fields={"version": ['Pick a saved version, or "draft".']})
                version = int(version)
            suite = _suite(self.agent, posted["suite"])
            operation = test_run_start(access=self.access, agent=self.agent, suite=suite, version=version)
        except DomainError as exc:
            status = 200 if exc.status_code == 400 else exc.status_code
            return self.render_to_response(self.get_context_data(error=exc, posted=posted), status=status)
        return redirect("operation", org=self.org.slug, operation_id=operation.pk)


def _rates(evidence: dict | None) -> list[float]:
    """One row of the safety table: the rates in SAFETY_CATEGORIES order."""
    rates = (evidence or {}).get("rates") or {}
    return [rates.get(category, 0) for category in SAFETY_CATEGORIES]


def _shown(runs) -> list[TestRun]:
    runs = list(runs)
    for run in runs:
        run.shown_status = run_status(run)
    return runs


def _suite(agent: Agent, value: str) -> TestSuite:
    try:
        suite = (
            TestSuite.objects.for_org(agent.org_id)
            .filter(pk=uuid.UUID(value), lineage_id=agent.lineage_id, archived_at__isnull=True)
            .first()
        )
    except ValueError:
        suite = None
    if suite is None:
        raise Invalid(fields={"suite": ["Choose a suite of this agent's lineage."]})
    return suite


class TestRunPage(AgentMixin, OrgPage):
    """One run: accuracy, and each case with its failing expectations highlighted."""

    __test__ = False
    template_name = "rollouts/test_run.html"
    nav = "agents"
    title = "Test run"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        try:
            run = (
                TestRun.objects.for_org(self.agent.org_id)
                .select_related("suite", "created_by", "operation")
                .get(agent=self.agent, pk=self.kwargs["run_id"])
            )
        except TestRun.DoesNotExist:
            raise Http404 from None
        context.update(self.agent_context("test-runs"), run=_shown([run])[0])
        return context
