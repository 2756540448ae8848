"""The release page (steps, weight, verdicts, actions) and the Releases tab's "Start a
release" form fields. The form posts to the tab (rollouts.views.ReleasesPage)."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect

from agents.views import AgentMixin
from lifecycle.api import ObjectAction
from lifecycle.errors import DomainError, Invalid
from lifecycle.ui import OrgPage

from .models import ReleaseStatus, ReleaseVerdict, TestSuite
from .release_config import DEFAULT_ANALYSIS, DEFAULT_KEEP_WARM, DEFAULT_STEPS
from .selectors import releases_of
from .services.release_progress import release_advance, release_pause, release_resume, release_rollback

ACTIONS = {
    "advance": release_advance,
    "pause": release_pause,
    "resume": release_resume,
    "rollback": release_rollback,
}
ANALYSIS_FIELDS = (
    ("interval", "Analysis interval", "e.g. 5m; at least 5s"),
    ("min_samples", "Minimum conversations per version", ""),
    ("max_error_rate_increase", "Max error-rate increase", "absolute, 0.05 = 5 points"),
    ("max_latency_increase", "Max p95 latency increase", "relative, 0.5 = +50 %"),
    ("max_rating_drop", "Max average-rating drop", "relative, 0.1 = -10 %"),
    ("max_safety_violations", "Max safety violations", ""),
    ("inconclusive_limit", "Inconclusive verdicts before pausing", ""),
)


def steps_text(steps: list[dict]) -> str:
    return " ".join(f"{s['weight']}:{s['hold']}" if s.get("hold") else str(s["weight"]) for s in steps)


def parse_steps(text: str):
    """ "5:1h 25:2h 100" → [{"weight": 5, "hold": "1h"}, …]; None when left blank."""
    text = text.replace(",", " ").strip()
    if not text:
        return None
    steps = []
    for i, part in enumerate(text.split()):
        weight, _, hold = part.partition(":")
        if not weight.isdigit():
            raise Invalid(fields={f"steps[{i}].weight": [f"“{part}” is not weight[:hold], e.g. 25:2h."]})
        steps.append({"weight": int(weight), **({"hold": hold} if hold else {})})
    return steps


def _number(value: str):
    try:
        return int(value)
    except ValueError:
        try:
            return float(value)
        except ValueError:
            return value  # the service names the field and what it takes


def start_form_context(agent, posted: dict | None) -> dict:
    """The "Start a release" fields, filled with the defaults (or what was posted)."""
    posted = posted or {}
    analysis = {key: posted.get(f"analysis_{key}", DEFAULT_ANALYSIS[key]) for key, _, _ in ANALYSIS_FIELDS}
    return {
        "strategies": [
            ("direct", "Direct: all traffic at once"),
            ("canary", "Canary: weighted steps, analysed, automatic rollback"),
            ("blue_green", "Blue-green: smoke test, then steps"),
            ("manual", "Manual: an approval, then 100 %"),
        ],
        "default_steps": {name: steps_text(steps) for name, steps in DEFAULT_STEPS.items()},
        "analysis_fields": [(key, label, hint, analysis[key]) for key, label, hint in ANALYSIS_FIELDS],
        "keep_warm_default": posted.get("keep_warm", DEFAULT_KEEP_WARM),
        "suites": list(
            TestSuite.objects.for_org(agent.org_id)
            .filter(lineage_id=agent.lineage_id, archived_at__isnull=True)
            .order_by("name")[:100]
        ),
    }


def progressive_arguments(post, strategy: str) -> dict:
    """release_create's progressive arguments from the form."""
    if strategy == "direct":
        return {}
    arguments = {
        "steps": parse_steps(post.get("steps", "")),
        "analysis": {
            key: value if key == "interval" else _number(value)
            for key, _, _ in ANALYSIS_FIELDS
            if (value := post.get(f"analysis_{key}", "").strip())
        },
        "keep_warm": post.get("keep_warm", "").strip() or None,
    }
    if strategy == "blue_green":
        if post.get("smoke_suite"):
            arguments["smoke"] = {"suite": post["smoke_suite"]}
        elif lines := [line.strip() for line in post.get("smoke_turns", "").splitlines() if line.strip()]:
            arguments["smoke"] = {"turns": [{"user": line, "expect": []} for line in lines]}
    return arguments


def release_of_page(agent, release_id):
    """The agent's release a page's URL names, or 404 (another agent's too)."""
    try:
        pk = uuid.UUID(str(release_id))
    except ValueError as exc:
        raise Http404 from exc
    release = releases_of(agent).filter(pk=pk).first()
    if release is None:
        raise Http404
    return release


class ReleasePage(AgentMixin, OrgPage):
    """One release: its steps as a progress line, the live weight, every verdict, actions."""

    template_name = "rollouts/release.html"
    nav = "agents"
    title = "Release"
    post_rule = ObjectAction("manage")

    def release(self):
        return release_of_page(self.agent, self.kwargs["release_id"])

    def get_context_data(self, error=None, **kwargs):
        context = super().get_context_data(**kwargs)
        release = self.release()
        verdicts = list(
            ReleaseVerdict.objects.for_org(self.org).filter(release=release).order_by("-at", "-id")[:500]
        )
        steps = [
            {**s, "index": i, "done": i < release.step or release.status == ReleaseStatus.SUCCEEDED,
             "current": i == release.step and release.active}
            for i, s in enumerate(release.steps)
        ]  # fmt: skip
        context.update(
            self.agent_context("releases"),
            release=release,
            steps=steps,
            verdicts=verdicts,
            can_manage=self.access.has_stage_role(self.agent.stage_id, "manager"),
            splitting=release.status in (ReleaseStatus.PROGRESSING, ReleaseStatus.PAUSED),
            error=error,
            page_title=f"{self.agent.name} · release v{release.candidate_version} · {self.org.name}",
        )
        return context

    def post(self, request, org, agent_id, release_id):
        name = request.POST.get("action", "")
        service = ACTIONS.get(name)
        if service is None:
            raise Http404
        arguments = {"reason": request.POST.get("reason", "")[:2000]}
        if name == "rollback":
            arguments["safety"] = request.POST.get("safety") == "on"
        try:
            service(access=self.access, release=self.release(), **arguments)
        except DomainError as exc:
            status = 200 if exc.status_code == 400 else exc.status_code
            return self.render_to_response(self.get_context_data(error=exc), status=status)
        done = {"advance": "advanced", "pause": "paused", "resume": "resumed", "rollback": "rolled back"}[
            name
        ]
        messages.success(request, f"The release was {done}.")
        return redirect("agent-release", org=self.org.slug, agent_id=self.agent.pk, release_id=release_id)
