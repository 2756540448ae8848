from django import forms
from django.conf import settings

from .models import OrgRole, StageRoleLevel

NO_ROLE = ""
STAGE_ROLE_CHOICES = [(NO_ROLE, "—"), *StageRoleLevel.choices]


class LoginForm(forms.Form):
    email = forms.EmailField(
        max_length=254, widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"})
    )
    password = forms.CharField(
        strip=False, max_length=128, widget=forms.PasswordInput(attrs={"autocomplete": "current-password"})
    )


class OrgForm(forms.Form):
    name = forms.CharField(max_length=120)
    slug = forms.SlugField(
        max_length=50, required=False, help_text="Optional; derived from the name. It never changes."
    )


class MemberAddForm(forms.Form):
    email = forms.EmailField(max_length=254)
    password = forms.CharField(
        strip=False,
        max_length=128,
        required=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="Only for a new account. An existing account keeps its password.",
    )
    role = forms.ChoiceField(choices=OrgRole.choices, initial=OrgRole.MEMBER)

    def __init__(self, *args, stages=(), **kwargs):
        super().__init__(*args, **kwargs)
        add_stage_role_fields(self, stages)


class MemberEditForm(forms.Form):
    role = forms.ChoiceField(choices=OrgRole.choices)

    def __init__(self, *args, stages=(), **kwargs):
        super().__init__(*args, **kwargs)
        add_stage_role_fields(self, stages)


def add_stage_role_fields(form: forms.Form, stages) -> None:
    form.stage_fields = []
    for stage in stages:
        name = f"stage_{stage.slug}"
        form.fields[name] = forms.ChoiceField(choices=STAGE_ROLE_CHOICES, required=False, label=stage.name)
        form.stage_fields.append((stage, name))


def stage_roles_from(form: forms.Form) -> dict[str, str]:
    return {
        stage.slug: form.cleaned_data[name]
        for stage, name in form.stage_fields
        if form.cleaned_data.get(name) not in (None, NO_ROLE)
    }


class StageForm(forms.Form):
    name = forms.CharField(max_length=80)
    slug = forms.SlugField(max_length=50, required=False, help_text="Optional; it never changes once made.")


class StageRenameForm(forms.Form):
    name = forms.CharField(max_length=80)


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What it is for, e.g. “CI pipeline”.")
    expires_in_days = forms.IntegerField(
        min_value=1, max_value=settings.API_TOKEN_MAX_DAYS, initial=settings.API_TOKEN_DEFAULT_DAYS
    )


class PasswordForm(forms.Form):
    old_password = forms.CharField(
        strip=False,
        max_length=128,
        label="Current password",
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
    new_password = forms.CharField(
        strip=False,
        max_length=128,
        label="New password",
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
