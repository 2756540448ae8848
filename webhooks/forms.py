from django import forms

from .events import EVENTS


class WebhookForm(forms.Form):
    url = forms.CharField(
        label="URL", max_length=500, widget=forms.URLInput(attrs={"placeholder": "https://…"})
    )
    events = forms.CharField(
        label="Events",
        max_length=2000,
        initial="promotion.*",
        help_text="Separated by commas or spaces: exact names (gate.failed), groups (promotion.*) or *.",
    )
    format = forms.ChoiceField(
        label="Format", choices=[("json", "JSON, signed"), ("slack", "Slack-compatible")]
    )
    secret = forms.CharField(
        label="Signing secret",
        required=False,
        max_length=200,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="16 to 200 characters; required for JSON. Never shown again: leave empty to keep it.",
    )
    description = forms.CharField(label="Description", required=False, max_length=200)
    enabled = forms.BooleanField(label="Enabled", required=False, initial=True)

    def clean_events(self) -> list[str]:
        return [part for part in self.cleaned_data["events"].replace(",", " ").split() if part]


KNOWN_EVENTS = [e for e in EVENTS if e != "ping"]
