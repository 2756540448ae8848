"""UI for moving agents between stages: promote, pull updates, back-port, drift."""

from __future__ import annotations

import uuid
from collections import Counter

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect
from django.urls import reverse

from accounts.pages import StagePage
from agents.components import POLICY
from agents.hooks import AgentAction, AgentTab
from agents.selectors import components_of, versions_of
from agents.services.presence import presence_active
from agents.services.versions import require_changelog
from agents.views import AgentMixin
from lifecycle.api import ObjectAction, OrgAdmin
from lifecycle.errors import DomainError, EditorsActive, Invalid
from lifecycle.operations import Operation
from lifecycle.ui import STARTED_TAG, OrgPage, flash_error

from .models import BackportStatus
from .policy import is_last_stage, releases_required
from .release_views import progressive_arguments, start_form_context
from .selectors import backports_visible, lineage_drift, releases_of, stage_keys_of
from .services.backport import (
    backport_apply,
    backport_decline,
    backport_options,
    backport_preview,
    backport_propose,
)
from .services.keys import stage_key_create, stage_key_revoke
from .services.promotion import active_agent_in, agent_promote, next_stage
from .services.pull import pull_preview, pull_request
from .services.release import release_create


def rollout_actions(access, agent) -> list[AgentAction]:
    """Promote / Pull updates / Back-port / Drift buttons on an agent's page."""
    org = agent.org.slug
    actions = []
    target = next_stage(agent.stage)
    if (
        target is not None
        and access.has_stage_role(target, "manager")
        and active_agent_in(agent, target) is None
    ):
        actions.append(
            AgentAction(f"Promote to {target.name}", reverse("agent-promote", args=[org, agent.pk]), True)
        )
    if agent.stage.position > 0 and access.has_stage_role(agent.stage_id, "manager"):
        actions.append(AgentAction("Pull updates", reverse("agent-pull", args=[org, agent.pk])))
        actions.append(AgentAction("Back-port", reverse("agent-backport", args=[org, agent.pk])))
    actions.append(AgentAction("Drift", reverse("lineage", args=[org, agent.lineage.slug])))
    return actions


def _editors(access, agent):
    return [p for p in presence_active(agent) if p.user_id != access.user.pk]


class ConfirmedActionMixin:
    """A dialog that starts an operation: its refusals are shown in the dialog itself."""

    def start(self, request, begin, started_message: str):
        try:
            require_changelog(request.POST.get("changelog", ""))  # both dialogs ask for one
            operation = begin()
        except DomainError as exc:
            # Bad input and editors at work are answered in the dialog, ready to retry; what
            # was typed (the changelog above all) is put back so a refusal loses nothing.
            status = 200 if isinstance(exc, EditorsActive) or exc.status_code == 400 else exc.status_code
            context = self.get_context_data(error=exc, posted=self.confirmation(request))
            return self.render_to_response(context, status=status)
        messages.info(request, started_message, extra_tags=STARTED_TAG)
        return redirect("operation", org=self.org.slug, operation_id=operation.pk)

    @staticmethod
    def confirmation(request) -> dict:
        return {
            "confirm": request.POST.get("confirm", ""),
            "changelog": request.POST.get("changelog", "")[:10000],
            "acknowledge_editors": request.POST.get("acknowledge_editors") == "on",
            # Only sent by the field owners and admins see while the stage is frozen.
            "override_freeze": {"reason": reason[:500]}
            if (reason := request.POST.get("override_reason", "").strip())
            else None,
        }


class PromotePage(ConfirmedActionMixin, AgentMixin, OrgPage):
    template_name = "rollouts/promote.html"
    nav = "agents"

    def get_context_data(self, error=None, **kwargs):
        context = super().get_context_data(**kwargs)
        agent = self.agent
        target = next_stage(agent.stage)
        kinds = Counter(components_of(agent).values_list("kind", flat=True))
        context.update(
            self.agent_context("promote"),
            target=target,
            existing=active_agent_in(agent, target) if target else None,
            can_promote=bool(target) and self.access.has_stage_role(target, "manager"),
            copied=sorted((k, n) for k, n in kinds.items() if POLICY[k].promotes),
            not_copied=sorted((k, n) for k, n in kinds.items() if not POLICY[k].promotes),
            review=[c.name for c in components_of(agent, "variable")],
            promote_editors=_editors(self.access, agent),
            error=error,
        )
        return context

    def post(self, request, org, agent_id):
        return self.start(
            request,
            lambda: agent_promote(access=self.access, agent=self.agent, **self.confirmation(request)),
            "Promotion started.",
        )


class PullPage(ConfirmedActionMixin, AgentMixin, OrgPage):
    template_name = "rollouts/pull.html"
    nav = "agents"

    def get_context_data(self, error=None, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(
            self.agent_context("pull"), error=error, pull_editors=_editors(self.access, self.agent)
        )
        try:
            preview = pull_preview(access=self.access, agent=self.agent, lines=True)
        except DomainError as exc:
            context["unavailable"] = exc.message
            return context
        context.update(
            preview=preview,
            selectable=[i for i in preview["items"] if i["selectable"]],
            conflicts=[i for i in preview["items"] if i["change"] == "conflict"],
            can_pull=self.access.has_stage_role(self.agent.stage_id, "manager"),
        )
        return context

    def post(self, request, org, agent_id):
        def begin():
            preview = pull_preview(access=self.access, agent=self.agent)
            included = set(request.POST.getlist("include"))
            exclude = [i["uid"] for i in preview["items"] if i["selectable"] and i["uid"] not in included]
            return pull_request(
                access=self.access,
                agent=self.agent,
                exclude=exclude,
                overwrite=request.POST.getlist("overwrite"),
                **self.confirmation(request),
            )

        return self.start(request, begin, "Pulling updates.")


class BackportProposePage(AgentMixin, OrgPage):
    template_name = "rollouts/backport.html"
    nav = "agents"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(self.agent_context("backport"))
        try:
            context["options"] = backport_options(access=self.access, agent=self.agent, lines=True)
        except DomainError as exc:
            context["unavailable"] = exc.message
        return context

    def post(self, request, org, agent_id):
        try:
            backport_propose(
                access=self.access,
                agent=self.agent,
                include=request.POST.getlist("include"),
                note=request.POST.get("note", "")[:5000],
            )
        except DomainError as exc:
            flash_error(request, exc)
            return redirect("agent-backport", org=self.org.slug, agent_id=self.agent.pk)
        messages.success(request, "Back-port proposed to the first stage.")
        return redirect("backports", org=self.org.slug)


class BackportsPage(OrgPage):
    template_name = "rollouts/backports.html"
    nav = "backports"
    title = "Back-ports"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        status = self.request.GET.get("status", "open")
        backports = backports_visible(self.access)
        if status in BackportStatus.values:
            backports = backports.filter(status=status)
        rows = []
        for backport in backports[:100]:
            can_decide = backport.status == BackportStatus.OPEN and self.access.has_stage_role(
                backport.target_agent.stage_id, "editor"
            )
            rows.append((backport, backport_preview(backport, lines=True), can_decide))
        context.update(rows=rows, status=status, statuses=BackportStatus.values)
        return context

    def post(self, request, org):
        try:
            backport = (
                backports_visible(self.access).filter(pk=uuid.UUID(request.POST.get("backport", ""))).first()
            )
        except ValueError:
            backport = None
        if backport is None:
            raise Http404
        try:
            if "decline" in request.POST:
                backport_decline(
                    access=self.access, backport=backport, note=request.POST.get("note", "")[:5000]
                )
                messages.success(request, "Back-port declined.")
            else:
                applied = backport_apply(
                    access=self.access,
                    backport=backport,
                    confirm=request.POST.get("confirm", ""),
                    overwrite=request.POST.getlist("overwrite"),
                    override_freeze=ConfirmedActionMixin.confirmation(request)["override_freeze"],
                )
                if isinstance(applied, Operation):
                    messages.success(request, "The back-port waits for the approvals its stage requires.")
                    return redirect("operation", org=self.org.slug, operation_id=applied.pk)
                messages.success(
                    request,
                    f"Back-port applied as version {applied.applied_version}.",
                )
        except DomainError as exc:
            flash_error(request, exc)
        return redirect("backports", org=self.org.slug)


class StageKeysPage(StagePage):
    """A stage's API keys for live traffic (owners and admins)."""

    template_name = "rollouts/stage_keys.html"
    nav = "stages"
    title = "API keys"
    rule = OrgAdmin()

    stage_role = None  # owners and admins: the rule above

    def get_context_data(self, new_key=None, new=None, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(
            stage=self.stage, keys=stage_keys_of(self.stage).order_by("-created_at"), new_key=new_key, new=new
        )
        context["page_title"] = f"API keys · {self.stage.name} · {self.org.name}"
        return context

    def post(self, request, org, slug):
        try:
            if "revoke" in request.POST:
                key = stage_keys_of(self.stage).filter(pk=_uuid(request.POST["revoke"])).first()
                if key is None:
                    raise Http404
                stage_key_revoke(access=self.access, key=key)
                messages.success(request, f"Revoked “{key.name}”.")
                return redirect("stage-keys", org=self.org.slug, slug=self.stage.slug)
            key, raw = stage_key_create(
                access=self.access, stage=self.stage, name=request.POST.get("name", "")
            )
        except DomainError as exc:
            flash_error(request, exc)
            return redirect("stage-keys", org=self.org.slug, slug=self.stage.slug)
        return self.render_to_response(self.get_context_data(new_key=raw, new=key))


def _uuid(value: str):
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


class LineagePage(OrgPage):
    """Drift: one lineage across every stage."""

    template_name = "rollouts/lineage.html"
    nav = "agents"
    title = "Lineage"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        try:
            context["drift"] = lineage_drift(
                access=self.access, lineage_slug=self.kwargs["lineage"], lines=True
            )
        except DomainError as exc:
            raise Http404 from exc
        # The report names stages by slug (the API's contract); people read their names.
        names = {s["stage"]: s["name"] for s in context["drift"]["stages"]}
        for pair in context["drift"]["pairs"]:
            pair["from_name"], pair["to_name"] = names[pair["from"]], names[pair["to"]]
        context["page_title"] = f"{context['drift']['lineage']} · Drift · {self.org.name}"
        return context


def release_actions(access, agent) -> list[AgentAction]:
    """*Make live* on an agent's page, for managers of its stage."""
    if not access.has_stage_role(agent.stage_id, "manager"):
        return []
    url = reverse("agent-releases", args=[agent.org.slug, agent.pk]) + "#make-live"
    return [AgentAction("Make live", url)]


def release_tabs(access, agent) -> list[AgentTab]:
    return [AgentTab("releases", "Releases", reverse("agent-releases", args=[agent.org.slug, agent.pk]))]


class ReleasesPage(AgentMixin, OrgPage):
    """What serves the agent's live traffic, who released what and when, and *Make live*."""

    template_name = "rollouts/releases.html"
    nav = "agents"
    title = "Releases"
    # Anyone who sees the agent reads its history; releasing takes its stage's manager role.
    post_rule = ObjectAction("manage")

    def get_context_data(self, error=None, posted=None, **kwargs):
        context = super().get_context_data(**kwargs)
        agent = self.agent
        versions = list(versions_of(agent)[:200])
        releases = list(releases_of(agent)[:200])
        context.update(
            self.agent_context("releases"),
            releases=releases,
            current=next((r for r in releases if r.candidate_version == agent.live_version), None),
            versions=versions,
            can_release=self.access.has_stage_role(agent.stage_id, "manager") and not agent.archived,
            required=releases_required(agent.stage),
            production=is_last_stage(agent.stage),
            error=error,
            posted=posted or {"version": str(agent.version), "changelog": "", "strategy": "direct"},
            **start_form_context(agent, posted),
        )
        return context

    def post(self, request, org, agent_id):
        posted = {
            **{key: value[:2000] for key, value in request.POST.items() if key != "csrfmiddlewaretoken"},
            "version": request.POST.get("version", ""),
            "changelog": request.POST.get("changelog", "")[:10000],
            "strategy": request.POST.get("strategy", "direct"),
            "override_freeze": ConfirmedActionMixin.confirmation(request)["override_freeze"],
        }
        try:
            if not posted["version"].isdigit():
                raise Invalid(fields={"version": ["Pick a saved version."]})
            made = release_create(
                access=self.access,
                agent=self.agent,
                version=int(posted["version"]),
                changelog=posted["changelog"],
                strategy=posted["strategy"],
                override_freeze=posted["override_freeze"],
                **progressive_arguments(request.POST, posted["strategy"]),
            )
        except DomainError as exc:
            # Shown next to the form with what was typed, so a refusal loses nothing.
            status = 200 if exc.status_code == 400 else exc.status_code
            return self.render_to_response(self.get_context_data(error=exc, posted=posted), status=status)
        if isinstance(made, Operation):
            messages.info(request, "The release waits for the stage's approvals.", extra_tags=STARTED_TAG)
            return redirect("operation", org=self.org.slug, operation_id=made.pk)
        if made.strategy != "direct":
            messages.success(
                request, f"The {made.strategy} release of version {made.candidate_version} started."
            )
            return redirect("agent-release", org=self.org.slug, agent_id=self.agent.pk, release_id=made.pk)
        messages.success(request, f"Version {made.candidate_version} is live.")
        return redirect("agent-releases", org=self.org.slug, agent_id=self.agent.pk)
