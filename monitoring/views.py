"""Monitoring pages: a stage's dashboard and a release's post-deployment report."""

from __future__ import annotations

import json
from datetime import timedelta

from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpResponse
from django.utils import timezone

from accounts.pages import StagePage
from agents.models import Agent
from agents.views import AgentMixin
from lifecycle.errors import Conflict
from lifecycle.ui import OrgPage
from rollouts.models import ACTIVE_RELEASE_STATUSES, Release

from . import metrics
from .report import release_report, release_report_csv
from .selectors import alerts_visible

DASHBOARD_HOURS = 24


class StageDashboardPage(StagePage):
    """One stage at a glance: its agents' live versions and last 24 h, releases in
    progress, open alerts and the month's spend."""

    template_name = "monitoring/stage_dashboard.html"
    nav = "stages"
    title = "Stage dashboard"

    def get_context_data(self, **kwargs):
        from rollouts.spending import stage_spend
        from rollouts.stage_status import spend_bar

        context = super().get_context_data(**kwargs)
        stage = self.stage
        now = timezone.now()
        agents = list(
            Agent.objects.for_org(self.org)
            .filter(stage=stage, archived_at__isnull=True)
            .select_related("lineage")
            .order_by("name", "pk")
        )
        releases = {
            r.agent_id: r
            for r in Release.objects.for_org(self.org).filter(
                agent__in=agents, status__in=[s.value for s in ACTIVE_RELEASE_STATUSES]
            )
        }
        day = metrics.by_agent(
            org_id=self.org.pk, stage_id=stage.pk, start=now - timedelta(hours=DASHBOARD_HOURS), end=now
        )
        rows = [
            {"agent": a, "release": releases.get(a.pk), "day": day.get(a.pk) or metrics.Totals()}
            for a in agents
        ]
        spend = stage_spend(stage)
        context.update(
            stage=stage,
            rows=rows,
            releases=[r for r in rows if r["release"]],
            alerts=list(
                alerts_visible(self.access, status="open", stage_ids=[stage.pk]).select_related("agent")
            ),
            spend=spend,
            bar=spend_bar(spend),
            hours=DASHBOARD_HOURS,
            page_title=f"{stage.name} dashboard · {self.org.name}",
        )
        return context


class ReleaseReportPage(AgentMixin, OrgPage):
    """The post-deployment report of one succeeded release; `?download=csv|json` for a file."""

    template_name = "monitoring/release_report.html"
    nav = "agents"
    title = "Post-deployment report"

    def release(self) -> Release:
        from rollouts.release_views import release_of_page

        return release_of_page(self.agent, self.kwargs["release_id"])

    def get(self, request, *args, **kwargs):
        release = self.release()
        try:
            report = release_report(release)
        except Conflict:
            report = None
        download = request.GET.get("download")
        if report is not None and download in ("csv", "json"):
            name = f"report-{self.agent.lineage.slug}-{self.agent.stage.slug}-v{release.candidate_version}"
            if download == "csv":
                response = HttpResponse(release_report_csv(report), content_type="text/csv")
            else:
                body = json.dumps(report, cls=DjangoJSONEncoder, indent=2)
                response = HttpResponse(body, content_type="application/json")
            response["Content-Disposition"] = f'attachment; filename="{name}.{download}"'
            return response
        context = self.get_context_data(**kwargs)
        shown_rows = []
        for row in (report or {}).get("metrics", []):
            change = row["change"]
            worse = (
                change is not None
                and row["better"] is not None
                and (change < 0) == row["better"]
                and change != 0
            )
            shown = None if change is None else f"{change * 100:+.1f} %"
            shown_rows.append({**row, "change_shown": shown, "worse": worse})
        context.update(
            self.agent_context("releases"),
            release=release,
            report=report,
            shown_rows=shown_rows,
            page_title=f"{self.agent.name} · report v{release.candidate_version} · {self.org.name}",
        )
        return self.render_to_response(context)
