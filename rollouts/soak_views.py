"""The agent's Soak tab: start a soak (N executions or a duration, at a concurrency),
and the latest soaks' percentiles, error rate, throughput and drift."""

from __future__ import annotations

import uuid

from django.shortcuts import redirect
from django.urls import reverse

from agents.hooks import AgentTab
from agents.selectors import versions_of
from agents.views import AgentMixin
from lifecycle.api import ObjectAction
from lifecycle.errors import DomainError, Invalid
from lifecycle.ui import OrgPage

from .models import SoakTest, TestSuite
from .services.soak import soak_start, soak_status


def soak_tabs(access, agent) -> list[AgentTab]:
    return [AgentTab("soak", "Soak", reverse("agent-soak", args=[agent.org.slug, agent.pk]))]


def _whole(posted: dict, name: str, errors: dict) -> int | None:
    value = posted[name].strip()
    if not value:
        return None
    if not value.isdigit():
        errors[name] = ["A whole number."]
        return None
    return int(value)


def _shown(soaks) -> list[SoakTest]:
    soaks = list(soaks)
    for soak in soaks:
        soak.shown_status = soak_status(soak)
    return soaks


class SoakPage(AgentMixin, OrgPage):
    """Soak tests of this agent and a form to start one."""

    template_name = "rollouts/soak.html"
    nav = "agents"
    title = "Soak tests"
    # Anyone who sees the agent reads its soaks; starting one takes the editor role (the service says).
    post_rule = ObjectAction("change")

    def get_context_data(self, error=None, posted=None, **kwargs):
        context = super().get_context_data(**kwargs)
        agent = self.agent
        context.update(
            self.agent_context("soak"),
            soaks=_shown(
                SoakTest.objects.for_org(agent.org_id)
                .filter(agent=agent)
                .select_related("created_by", "operation")
                .order_by("-created_at")[:50]
            ),
            suites=list(
                TestSuite.objects.for_org(agent.org_id).filter(
                    lineage_id=agent.lineage_id, archived_at__isnull=True
                )
            ),
            versions=list(versions_of(agent)[:200]),
            can_run=self.access.can("change", agent) and not agent.archived,
            error=error,
            posted=posted
            or {
                "executions": "100",
                "duration": "",
                "concurrency": "4",
                "suite": "",
                "version": str(agent.version or "draft"),
            },
        )
        return context

    def post(self, request, org, agent_id):
        posted = {
            name: request.POST.get(name, "")[:100]
            for name in ("executions", "duration", "concurrency", "suite", "version")
        }
        errors: dict[str, list[str]] = {}
        executions = _whole(posted, "executions", errors)
        concurrency = _whole(posted, "concurrency", errors)
        version = posted["version"] if posted["version"] == "draft" else _whole(posted, "version", errors)
        suite = None
        if posted["suite"]:
            try:
                suite = uuid.UUID(posted["suite"])
            except ValueError:
                errors["suite"] = ["Choose a suite of this agent's lineage."]
        try:
            if errors:
                raise Invalid(fields=errors)
            operation = soak_start(
                access=self.access,
                agent=self.agent,
                executions=executions if executions is not None or posted["duration"] else 100,
                duration=posted["duration"].strip() or None,
                concurrency=concurrency or 4,
                suite=suite,
                version=version,
            )
        except DomainError as exc:
            status = 200 if exc.status_code == 400 else exc.status_code
            return self.render_to_response(self.get_context_data(error=exc, posted=posted), status=status)
        return redirect("operation", org=self.org.slug, operation_id=operation.pk)
