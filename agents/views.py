"""UI pages for agents: the stage tabs, the agent editor, versions, sharing, results."""

from __future__ import annotations

import uuid
from functools import cached_property

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse

from accounts.selectors import members_of, stages_of
from lifecycle.errors import DomainError, Invalid, PreconditionFailed
from lifecycle.ui import OrgObjectPage, OrgPage, flash_error, form_errors_from

from . import forms
from .components import SETTINGS
from .diffing import diff_entries
from .hooks import agent_actions, agent_tabs
from .models import Agent, ConversationSource
from .readable import side_by_side
from .secrets import seal
from .selectors import (
    active_editors,
    agent_details,
    agent_filters,
    agents_visible,
    components_of,
    conversation_turns,
    conversations_of,
    test_results_of,
    versions_of,
)
from .services.agents import agent_archive, agent_create, agent_unarchive, first_stage
from .services.components import component_create, component_delete, component_update, expect_hash
from .services.grants import GRANTABLE, can_share, grant_revoke, grant_set, grants_of
from .services.presence import presence_active, presence_heartbeat
from .services.transfer import agent_import
from .services.versions import require_changelog, version_restore, version_save
from .sync import annotate_updates_available
from .transcripts import tool_block, transcript_turns

MODULES = [
    ("console", "Test console"),
    ("settings", "Settings"),
    ("skills", "Skills"),
    ("knowledge", "Knowledge"),
    ("tools", "Tools"),
    ("variables", "Variables"),
    ("other", "Channels & more"),
]
PRESENCE_MODULE = {"other": "channels"}
#: The name of each agent tab, for page titles ("Sales bot · Skills · Development").
TAB_TITLES = {
    **dict(MODULES),
    "versions": "Versions",
    "results": "Test results",
    "conversations": "Conversations",
    "sharing": "Sharing",
    "promote": "Promote",
    "pull": "Pull updates",
    "backport": "Back-port",
    "releases": "Releases",
}


class AgentsPage(OrgPage):
    """The agents of one stage, as tabs: owner, version, status and who is editing."""

    template_name = "agents/list.html"
    nav = "agents"
    title = "Agents"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        stages = list(stages_of(self.org))
        visible_ids = self.access.stage_ids_with("viewer")
        tabs = [s for s in stages if visible_ids is None or s.pk in visible_ids] or stages
        current = next((s for s in stages if s.slug == self.request.GET.get("stage")), tabs[0])
        agents = list(
            agent_filters(
                agent_details(agents_visible(self.access), self.org),
                {
                    "stage": current.slug,
                    "search": self.request.GET.get("search", ""),
                    "archived": self.request.GET.get("archived", ""),
                },
            )[:200]
        )
        annotate_updates_available(agents)
        editors = active_editors(agents)
        context.update(
            stages=stages,
            tabs=tabs,
            current=current,
            rows=[(agent, editors.get(agent.pk, [])) for agent in agents],
            can_create=self.access.has_stage_role(first_stage(self.org), "editor"),
            page_title=f"Agents · {current.name} · {self.org.name}",
            search=self.request.GET.get("search", ""),
            archived=self.request.GET.get("archived", "") == "true",
        )
        return context


class AgentNewPage(OrgPage):
    template_name = "agents/new.html"
    nav = "agents"
    title = "New agent"

    def get_context_data(self, form=None, import_form=None, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(
            form=form or forms.NewAgentForm(),
            import_form=import_form or forms.ImportForm(),
            first_stage=first_stage(self.org),
        )
        return context

    def post(self, request, org):
        if "import" in request.POST:
            form = forms.ImportForm(request.POST, request.FILES)
            if form.is_valid():
                try:
                    agent = agent_import(access=self.access, document=form.cleaned_data["parsed"])
                except DomainError as exc:
                    for path, problems in list(exc.fields.items())[:20]:
                        form.add_error(None, f"{path}: {problems[0]}" if path else problems[0])
                    if not exc.fields:
                        form.add_error(None, exc.message)
                else:
                    messages.success(request, f"Imported {agent.name}.")
                    return redirect("agent", org=self.org.slug, agent_id=agent.pk)
            return self.render_to_response(self.get_context_data(import_form=form))
        form = forms.NewAgentForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            settings = {
                "instructions": data["instructions"],
                "first_message": data["first_message"],
                "engine": data["engine"],
            }
            try:
                agent = agent_create(
                    access=self.access, name=data["name"], description=data["description"], settings=settings
                )
            except DomainError as exc:
                form_errors_from(form, exc)
            else:
                messages.success(request, f"Created {agent.name} (version 1).")
                return redirect("agent", org=self.org.slug, agent_id=agent.pk)
        return self.render_to_response(self.get_context_data(form=form))


class AgentMixin(OrgObjectPage):
    """Pages about one agent: visible to the caller (its stage, or a grant), or missing.
    The sealed base finds it; pages only read `self.agent`."""

    model = Agent
    stage_field = "stage"
    lookup_url_kwarg = "agent_id"

    def refine_object_queryset(self, queryset):
        return agent_details(queryset, self.org)

    @cached_property
    def agent(self):
        annotate_updates_available([self.object])
        return self.object

    def component(self, uid):
        """One of this agent's components by uid, or 404 (also for a malformed uid)."""
        try:
            component = components_of(self.agent).filter(uid=uuid.UUID(str(uid))).first()
        except ValueError:
            component = None
        if component is None:
            raise Http404
        return component

    def agent_context(self, tab: str) -> dict:
        agent = self.agent
        return {
            "agent": agent,
            "tab": tab,
            "modules": MODULES,
            "can_edit": self.access.can("change", agent) and not agent.archived,
            "can_share": can_share(self.access, agent),
            "can_archive": self.access.can("delete", agent) and not agent.archived,
            "can_unarchive": self.access.can("delete", agent) and agent.archived,
            "editors": [p for p in presence_active(agent) if p.user_id != self.request.user.pk],
            "actions": agent_actions(self.access, agent) if not agent.archived else [],
            "page_title": f"{agent.name} · {TAB_TITLES.get(tab, tab)} · {agent.stage.name}",
            "extra_tabs": agent_tabs(self.access, agent),
        }


class AgentModulePage(AgentMixin, OrgPage):
    """Edit one module of an agent: its settings, skills, knowledge, tools or variables."""

    template_name = "agents/module.html"
    nav = "agents"

    @property
    def module(self) -> str:
        module = self.kwargs.get("module", "settings")
        if module not in dict(MODULES) or module == "console":
            raise Http404
        return module

    def get_context_data(self, bound=None, stale=None, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(self.agent_context(self.module))
        context["presence_module"] = PRESENCE_MODULE.get(self.module, self.module)
        context["stale"] = stale
        if self.module == "settings":
            component = components_of(self.agent, SETTINGS).first()
            context["settings_form"] = bound or forms.SettingsForm(agent=self.agent, component=component)
            return context
        kinds = forms.MODULE_KINDS[self.module]
        components = [c for c in components_of(self.agent) if c.kind in kinds]
        rows = []
        for component in components:
            form = (
                bound
                if bound is not None and bound.uid == str(component.uid)
                else self._form(component=component)
            )
            rows.append((component, form))
        context["rows"] = rows
        context["add_form"] = bound if bound is not None and not bound.uid else self._form()
        return context

    def _stale(self, request, form, component, name):
        """Someone saved since this form was opened: show both versions, keep what was typed.

        The form comes back with what the user typed and the newer hash, so saving again
        replaces the other save knowingly; nothing typed is lost.
        """
        current = self.component(str(component.uid)) if self.module != "settings" else None
        if current is None:
            current = components_of(self.agent, SETTINGS).first()
        data = request.POST.copy()
        data[form.add_prefix("seen")] = current.content_hash
        if self.module == "settings":
            bound = forms.SettingsForm(data, agent=self.agent, component=current)
        else:
            bound = self._form(data, component=current)
        bound.is_valid()
        yours = seal(current.kind, form.to_spec())
        stale = {
            "name": current.name,
            "lines": side_by_side(current.kind, (current.name, current.spec), (name, yours)),
        }
        # 200 like any form error: htmx swaps it in, with the typed form.
        return self.render_to_response(self.get_context_data(bound=bound, stale=stale), status=200)

    def _form(self, data=None, component=None):
        form_class = forms.MODULE_FORMS[self.module]
        kwargs = {
            "agent": self.agent,
            "component": component,
            "prefix": str(component.uid) if component else "new",
        }
        if form_class is forms.SkillForm:
            kwargs["tools"] = [t.name for t in components_of(self.agent, "tool")]
        return form_class(data, **kwargs)

    def post(self, request, org, agent_id, module="settings"):
        agent = self.agent
        try:
            if "delete" in request.POST:
                component = self.component(request.POST["delete"])
                component_delete(access=self.access, component=component)
                messages.success(request, f"Deleted {component.name}.")
                return redirect(request.path)
            component = None
            if request.POST.get("uid"):
                component = self.component(request.POST["uid"])
            if self.module == "settings":
                component = components_of(agent, SETTINGS).first()
                form = forms.SettingsForm(request.POST, agent=agent, component=component)
            else:
                form = self._form(request.POST, component=component)
            if not form.is_valid():
                return self.render_to_response(self.get_context_data(bound=form), status=200)
            try:
                if component is None:
                    component_create(
                        access=self.access,
                        agent=agent,
                        kind=form.kind,
                        name=form.cleaned_data["name"],
                        spec=form.to_spec(),
                    )
                    messages.success(request, f"Added {form.cleaned_data['name']}.")
                else:
                    name = form.cleaned_data.get("name") or component.name
                    seen = form.cleaned_data.get("seen")
                    try:
                        component_update(
                            access=self.access,
                            component=component,
                            name=name,
                            spec=form.to_spec(),
                            guard=expect_hash(seen) if seen else None,
                        )
                    except PreconditionFailed:
                        return self._stale(request, form, component, name)
                    messages.success(request, f"Saved {name}.")
            except DomainError as exc:
                form_errors_from(form, exc)
                return self.render_to_response(self.get_context_data(bound=form), status=200)
        except DomainError as exc:
            flash_error(request, exc)
        return redirect(request.path)


class ConsolePage(AgentMixin, OrgPage):
    """Talk to the agent's working copy over the console's WebSocket."""

    template_name = "agents/console.html"
    nav = "agents"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(self.agent_context("console"))
        context["ws_path"] = f"/ws/orgs/{self.org.slug}/agents/{self.agent.pk}/conversation/"
        context["results_url"] = reverse("agent-results", args=[self.org.slug, self.agent.pk])
        # A tool call that waits for a person shows in the console; editors and managers
        # of the stage decide it right there, everyone else follows a link to the inbox.
        context["approvals_page"] = reverse("action-approvals", args=[self.org.slug])
        context["approvals_api"] = f"/api/v1/orgs/{self.org.slug}/action-approvals/"
        context["can_decide_actions"] = self.access.has_stage_role(self.agent.stage_id, "editor")
        return context


class PresencePage(AgentMixin, OrgPage):
    """htmx: a heartbeat from an open module (POST), answered with who else is editing."""

    template_name = "agents/_editors.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["editors"] = [p for p in presence_active(self.agent) if p.user_id != self.request.user.pk]
        return context

    def post(self, request, org, agent_id):
        # Opening a module is not editing it: app.js adds editing=1 once something in the
        # module's form changed. Until then the poll only refreshes who else is editing.
        if request.POST.get("editing") == "1":
            try:
                module = request.POST.get("module", "")
                presence_heartbeat(access=self.access, agent=self.agent, module=module)
            except DomainError as exc:
                return HttpResponse(exc.message, status=exc.status_code)
        return self.render_to_response(self.get_context_data())


class VersionsPage(AgentMixin, OrgPage):
    template_name = "agents/versions.html"
    nav = "agents"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(self.agent_context("versions"))
        versions = list(versions_of(self.agent).select_related("manifest")[:200])
        context["versions"] = versions
        numbers = {v.number: v for v in versions}
        a, b = self.request.GET.get("a"), self.request.GET.get("b")
        if a and b and a.isdigit() and b.isdigit() and int(a) in numbers and int(b) in numbers:
            older, newer = numbers[int(a)], numbers[int(b)]
            context["diff"] = {
                "a": older.number,
                "b": newer.number,
                "labels": (f"v{older.number}", f"v{newer.number}"),
                **diff_entries(self.org.pk, older.manifest.entries, newer.manifest.entries, lines=True),
            }
        elif a or b:
            context["diff_error"] = "Pick two versions of this agent."
        return context

    def post(self, request, org, agent_id):
        try:
            changelog = require_changelog(request.POST.get("changelog", "")[:10000])
            if "restore" in request.POST:
                number = request.POST.get("restore", "")
                if not number.isdigit():
                    raise Invalid(fields={"version": ["Pick a version."]})
                version = version_restore(
                    access=self.access,
                    agent=self.agent,
                    number=int(number),
                    changelog=changelog,
                )
                messages.success(request, f"Restored version {number} as version {version.number}.")
            else:
                version = version_save(access=self.access, agent=self.agent, changelog=changelog)
                messages.success(request, f"Saved version {version.number}.")
        except DomainError as exc:
            flash_error(request, exc)
        return redirect("agent-versions", org=self.org.slug, agent_id=self.agent.pk)


class SharingPage(AgentMixin, OrgPage):
    template_name = "agents/sharing.html"
    nav = "agents"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(self.agent_context("sharing"))
        context["grants"] = grants_of(self.agent)
        context["members"] = [m.user for m in members_of(self.access) if m.user_id != self.agent.owner_id]
        context["grantable"] = GRANTABLE
        return context

    def post(self, request, org, agent_id):
        try:
            if "revoke" in request.POST:
                user = next((u for u in grants_of(self.agent) if str(u.pk) == request.POST["revoke"]), None)
                if user is None:
                    raise Http404
                grant_revoke(access=self.access, agent=self.agent, user=user)
                messages.success(request, f"Stopped sharing with {user.email}.")
            else:
                user, permissions = grant_set(
                    access=self.access,
                    agent=self.agent,
                    user_ref=request.POST.get("user", ""),
                    permissions=request.POST.getlist("permissions"),
                )
                messages.success(request, f"Shared with {user.email}: {', '.join(permissions)}.")
        except DomainError as exc:
            flash_error(request, exc)
        return redirect("agent-sharing", org=self.org.slug, agent_id=self.agent.pk)


class ResultsPage(AgentMixin, OrgPage):
    template_name = "agents/results.html"
    nav = "agents"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(self.agent_context("results"))
        results = list(test_results_of(self.agent).order_by("-created_at")[:200])
        for result in results:
            result.turns = transcript_turns(result.transcript)  # a conversation, not JSON
        context["results"] = results
        return context


class ConversationsPage(AgentMixin, OrgPage):
    """The agent's recorded conversations, newest first; one opens with its turns."""

    template_name = "agents/conversations.html"
    nav = "agents"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(self.agent_context("conversations"))
        source = self.request.GET.get("source", "")
        source = source if source in ConversationSource.values else ""
        conversations = list(
            conversations_of(self.agent, source=source or None).order_by("-started_at")[:100]
        )
        opened = self.request.GET.get("open", "")
        for conversation in conversations:
            if str(conversation.pk) == opened:
                conversation.turn_list = list(conversation_turns(conversation))
                for turn in conversation.turn_list:
                    tools = (turn.details or {}).get("tools") or []
                    turn.tool_blocks = [b for b in map(tool_block, tools) if b]
        context.update(
            conversations=conversations, source=source, sources=ConversationSource.values, opened=opened
        )
        return context


class ArchivePage(AgentMixin, OrgPage):
    http_method_names = ["post"]

    def post(self, request, org, agent_id):
        try:
            agent_archive(access=self.access, agent=self.agent)
            messages.success(request, f"Archived {self.agent.name}. Its history stays readable.")
        except DomainError as exc:
            flash_error(request, exc)
        return redirect(reverse("agents", kwargs={"org": self.org.slug}) + f"?stage={self.agent.stage.slug}")


class UnarchivePage(AgentMixin, OrgPage):
    """Undo an archive: the agent is back in its stage's list (409 if its lineage is active there)."""

    http_method_names = ["post"]

    def post(self, request, org, agent_id):
        try:
            agent_unarchive(access=self.access, agent=self.agent)
            messages.success(request, f"Unarchived {self.agent.name}.")
        except DomainError as exc:
            flash_error(request, exc)
        return redirect("agent", org=self.org.slug, agent_id=self.agent.pk)
