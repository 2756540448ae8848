"""UI pages for signing in, orgs, members, stages and the user's own account."""

from django.contrib import messages
from django.contrib.auth import login, logout, update_session_auth_hash
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import View
from django.views.generic import TemplateView

from lifecycle.api import OrgAdmin
from lifecycle.audit import audit_visible_to
from lifecycle.errors import DomainError, Throttled, Unauthenticated
from lifecycle.ui import OrgPage, flash_error, form_errors_from

from . import forms
from .hooks import stage_summaries
from .selectors import (
    members_of,
    orgs_for_user,
    stage_roles_map,
    stages_of,
    stages_with_agent_counts,
    token_of,
    tokens_of,
)
from .services import auth as auth_services
from .services.members import member_add, member_remove, member_update
from .services.orgs import org_create
from .services.stages import stage_create, stage_delete, stage_update


class LoginPage(View):
    template_name = "accounts/login.html"

    def get(self, request):
        if request.user.is_authenticated:
            return redirect(self._next(request))
        return render(
            request, self.template_name, {"form": forms.LoginForm(), "next": request.GET.get("next", "")}
        )

    def post(self, request):
        form = forms.LoginForm(request.POST)
        status = 200
        if form.is_valid():
            try:
                user = auth_services.credentials_check(
                    email=form.cleaned_data["email"],
                    password=form.cleaned_data["password"],
                    ip=getattr(request, "client_ip", None),
                    request=request,
                )
            except Throttled as exc:
                form.add_error(None, exc.message)
                status = 429
            except Unauthenticated as exc:
                form.add_error(None, exc.message)
            else:
                login(request, user, backend="django.contrib.auth.backends.ModelBackend")
                return redirect(self._next(request))
        context = {"form": form, "next": request.POST.get("next", "")}
        return render(request, self.template_name, context, status=status)

    def _next(self, request) -> str:
        target = request.POST.get("next") or request.GET.get("next") or ""
        if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
            return target
        return reverse("home")


class LogoutView(View):
    def post(self, request):
        logout(request)
        return redirect("login")


class HomePage(LoginRequiredMixin, View):
    """Straight to your first org; or the page to create one."""

    def get(self, request):
        first = orgs_for_user(request.user).first()
        if first is not None:
            return redirect("org-overview", org=first.slug)
        return redirect("org-new")


class OrgNewPage(LoginRequiredMixin, View):
    template_name = "accounts/org_new.html"

    def get(self, request):
        return render(request, self.template_name, {"form": forms.OrgForm()})

    def post(self, request):
        form = forms.OrgForm(request.POST)
        if form.is_valid():
            try:
                org = org_create(actor=request.user, **{k: v for k, v in form.cleaned_data.items() if v})
            except DomainError as exc:
                form_errors_from(form, exc)
            else:
                messages.success(request, f"Created {org.name}, with the default stages.")
                return redirect("org-overview", org=org.slug)
        return render(request, self.template_name, {"form": form})


class OrgOverviewPage(OrgPage):
    template_name = "accounts/org_overview.html"
    nav = "overview"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        stages = list(stages_of(self.org))
        context["stages"] = [(stage, self.access.stage_role(stage)) for stage in stages]
        context["member_count"] = members_of(self.access).count()
        context["recent"] = audit_visible_to(self.access)[:8]
        from monitoring.board import pipeline_board

        context["board"] = pipeline_board(self.access)
        return context


class MembersPage(OrgPage):
    template_name = "accounts/members.html"
    nav = "members"
    title = "Members"
    post_rule = OrgAdmin()

    def get_context_data(self, add_form=None, **kwargs):
        context = super().get_context_data(**kwargs)
        stages = list(stages_of(self.org))
        rows = []
        for membership in members_of(self.access):
            roles = stage_roles_map(membership)
            edit = None
            if self.access.is_admin:
                initial = {"role": membership.role}
                initial.update({f"stage_{slug}": role for slug, role in roles.items()})
                edit = forms.MemberEditForm(initial=initial, stages=stages, prefix=str(membership.pk))
                email = membership.user.email
                for field in edit.fields.values():
                    # The selects sit in table cells; `form=` ties them to the row's form.
                    field.widget.attrs.update(
                        form=f"member-{membership.pk}", **{"aria-label": f"{field.label} role of {email}"}
                    )
            cells = [edit[name] for _, name in edit.stage_fields] if edit else []
            rows.append({"membership": membership, "roles": roles, "form": edit, "stage_cells": cells})
        context.update(
            stages=stages,
            rows=rows,
            add_form=add_form or forms.MemberAddForm(stages=stages),
        )
        return context

    def post(self, request, org):
        stages = list(stages_of(self.org))
        form = forms.MemberAddForm(request.POST, stages=stages)
        if form.is_valid():
            try:
                membership = member_add(
                    access=self.access,
                    email=form.cleaned_data["email"],
                    password=form.cleaned_data["password"] or None,
                    role=form.cleaned_data["role"],
                    stage_roles=forms.stage_roles_from(form),
                )
            except DomainError as exc:
                form_errors_from(form, exc)
            else:
                messages.success(request, f"Added {membership.user.email}.")
                return redirect("members", org=self.org.slug)
        return self.render_to_response(self.get_context_data(add_form=form))


class MemberEditPage(OrgPage):
    """POST-only: change one member's roles, or remove them."""

    http_method_names = ["post"]
    post_rule = None  # members may remove themselves; the service decides

    def post(self, request, org, member_id, remove=False):
        membership = members_of(self.access).filter(pk=member_id).first()
        if membership is None:
            raise Http404
        try:
            if remove:
                member_remove(access=self.access, membership=membership)
                messages.success(request, f"Removed {membership.user.email}.")
            else:
                form = forms.MemberEditForm(
                    request.POST, stages=list(stages_of(self.org)), prefix=str(membership.pk)
                )
                if not form.is_valid():
                    messages.error(request, "Pick a valid role for each stage.")
                else:
                    member_update(
                        access=self.access,
                        membership=membership,
                        role=form.cleaned_data["role"],
                        stage_roles=forms.stage_roles_from(form),
                    )
                    messages.success(request, f"Saved roles for {membership.user.email}.")
        except DomainError as exc:
            flash_error(request, exc)
        if remove and membership.user_id == request.user.pk:
            return redirect("home")
        return redirect("members", org=self.org.slug)


class StagesPage(OrgPage):
    template_name = "accounts/stages.html"
    nav = "stages"
    title = "Stages"
    post_rule = OrgAdmin()

    def get_context_data(self, form=None, **kwargs):
        context = super().get_context_data(**kwargs)
        stages = stages_with_agent_counts(self.org)
        # Moving a stage swaps it with its neighbour: warn when either holds agents, since
        # their promotion path changes.
        for i, stage in enumerate(stages):
            up = stages[i - 1] if i > 0 else None
            down = stages[i + 1] if i + 1 < len(stages) else None
            stage.held_up = stage.agent_count + (up.agent_count if up else 0)
            stage.held_down = stage.agent_count + (down.agent_count if down else 0)
            stage.neighbour_up, stage.neighbour_down = up, down
        summaries = stage_summaries(self.access, stages)
        for stage in stages:
            stage.summaries = summaries.get(stage.pk, [])
        context.update(stages=stages, form=form or forms.StageForm())
        return context

    def post(self, request, org):
        form = forms.StageForm(request.POST)
        if form.is_valid():
            try:
                stage = stage_create(
                    access=self.access, name=form.cleaned_data["name"], slug=form.cleaned_data["slug"] or None
                )
            except DomainError as exc:
                form_errors_from(form, exc)
            else:
                messages.success(request, f"Added the {stage.name} stage.")
                return redirect("stages", org=self.org.slug)
        return self.render_to_response(self.get_context_data(form=form))


class StageEditPage(OrgPage):
    http_method_names = ["post"]
    post_rule = OrgAdmin()

    def post(self, request, org, slug, op):
        stage = stages_of(self.org).filter(slug=slug).first()
        if stage is None:
            raise Http404
        try:
            if op == "rename":
                form = forms.StageRenameForm(request.POST)
                if form.is_valid():
                    stage_update(access=self.access, stage=stage, name=form.cleaned_data["name"])
                    messages.success(request, "Stage renamed.")
                else:
                    messages.error(request, "A stage needs a name.")
            elif op in ("up", "down"):
                stage_update(
                    access=self.access, stage=stage, position=stage.position + (-1 if op == "up" else 1)
                )
            elif op == "delete":
                stage_delete(access=self.access, stage=stage)
                messages.success(request, f"Deleted the {stage.name} stage.")
            else:
                raise Http404
        except DomainError as exc:
            flash_error(request, exc)
        return redirect("stages", org=self.org.slug)


class AccountPage(LoginRequiredMixin, TemplateView):
    """Your password and your API tokens."""

    template_name = "accounts/account.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.setdefault("password_form", forms.PasswordForm())
        context.setdefault("token_form", forms.TokenForm())
        context["tokens"] = tokens_of(self.request.user)[:100]
        return context

    def post(self, request):
        context = {}
        if "create_token" in request.POST:
            form = forms.TokenForm(request.POST)
            if form.is_valid():
                token, key = auth_services.token_create(user=request.user, **form.cleaned_data)
                context["new_key"] = key
                context["new_token"] = token
            else:
                context["token_form"] = form
        elif "revoke_token" in request.POST:
            token = token_of(request.user, request.POST.get("revoke_token", ""))
            if token is None:
                raise Http404
            auth_services.token_revoke(user=request.user, token=token)
            messages.success(request, f"Revoked “{token.name or token.prefix}”.")
            return redirect("account")
        elif "change_password" in request.POST:
            form = forms.PasswordForm(request.POST)
            if form.is_valid():
                try:
                    auth_services.password_change(user=request.user, **form.cleaned_data)
                except DomainError as exc:
                    form_errors_from(form, exc)
                else:
                    # Keep this session signed in after the password changes.
                    update_session_auth_hash(request, request.user)
                    messages.success(request, "Password changed.")
                    return redirect("account")
            context["password_form"] = form
        return self.render_to_response(self.get_context_data(**context))
