"""The agent page's Red team tab: start a run, and the attack success rate per category x
strategy beside the baseline (the live version's latest run), as in "Baseline | v2"."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect
from django.urls import reverse

from agents.hooks import AgentTab
from agents.selectors import versions_of
from agents.views import AgentMixin
from lifecycle.api import ObjectAction
from lifecycle.errors import DomainError, Invalid
from lifecycle.ui import STARTED_TAG, OrgPage

from .models import EvaluationStatus, RedTeamRun
from .redteam import CATEGORIES
from .redteam.gate import latest_redteam_run
from .redteam.strategies import STRATEGIES
from .services.evaluation import DRAFT
from .services.redteam import redteam_start

HISTORY = 20
FINDINGS = 50


def redteam_tabs(access, agent) -> list[AgentTab]:
    return [AgentTab("red-team", "Red team", reverse("agent-red-team", args=[agent.org.slug, agent.pk]))]


def comparison(current: RedTeamRun | None, baseline: RedTeamRun | None) -> list[dict]:
    """Rows of the table: each category x strategy the current run attacked, with its
    rate and the baseline's for the same cell (None where the baseline did not run it)."""
    if current is None:
        return []
    before = {(r["category"], r["strategy"]): r for r in (baseline.table if baseline else [])}
    rows = []
    for row in current.table:
        if not row["attacks"]:
            continue
        old = before.get((row["category"], row["strategy"]))
        rows.append({**row, "baseline": old["asr"] if old else None})
    return rows


class RedTeamPage(AgentMixin, OrgPage):
    """Runs of the red team on this agent; editors of its stage start them."""

    template_name = "rollouts/redteam.html"
    nav = "agents"
    title = "Red team"
    # Anyone who sees the agent reads the results; starting a run takes the editor role.
    post_rule = ObjectAction("change")

    def get_context_data(self, error=None, posted=None, **kwargs):
        context = super().get_context_data(**kwargs)
        agent = self.agent
        runs = list(
            RedTeamRun.objects.for_org(self.org)
            .filter(agent=agent)
            .select_related("created_by")
            .order_by("-created_at")[:HISTORY]
        )
        current = next((r for r in runs if r.status == EvaluationStatus.SUCCEEDED), None)
        baseline = latest_redteam_run(agent, agent.live_version) if agent.live_version else None
        # The latest run is of the live version: it is the baseline, nothing to compare with.
        current_is_live = current is not None and current.version == agent.live_version
        if current_is_live:
            baseline = None
        context.update(
            self.agent_context("red-team"),
            runs=runs,
            current=current,
            baseline=baseline,
            current_is_live=current_is_live,
            rows=comparison(current, baseline),
            findings=(current.findings[:FINDINGS] if current else []),
            categories=CATEGORIES,
            strategies=STRATEGIES,
            versions=list(versions_of(agent)[:50]),
            can_start=self.access.has_stage_role(agent.stage_id, "editor") and not agent.archived,
            error=error,
            posted=posted or {"categories": list(CATEGORIES), "strategies": ["basic"], "version": ""},
        )
        return context

    def post(self, request, org, agent_id):
        version = request.POST.get("version", "")
        posted = {
            "categories": request.POST.getlist("categories"),
            "strategies": request.POST.getlist("strategies"),
            "version": version,
        }
        try:
            missing = {
                name: [f"Tick at least one of the {name}."]
                for name in ("categories", "strategies")
                if not posted[name]
            }
            if missing:  # nothing ticked is a mistake in a form, not "all"
                raise Invalid(fields=missing)
            operation = redteam_start(
                access=self.access,
                agent=self.agent,
                categories=posted["categories"],
                strategies=posted["strategies"],
                version=DRAFT if version == DRAFT else (int(version) if version.isdigit() else None),
            )
        except DomainError as exc:
            status = 200 if exc.status_code == 400 else exc.status_code
            return self.render_to_response(self.get_context_data(error=exc, posted=posted), status=status)
        messages.info(request, "The red-team run has started.", extra_tags=STARTED_TAG)
        return redirect("operation", org=self.org.slug, operation_id=operation.pk)
