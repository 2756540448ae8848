"""The sealed base for org-scoped UI pages, and what every page's template gets.

Like the API base: the org comes from the URL, membership is checked once, a page you
may not see is a 404 and an action you may not take is a 403 written to the audit log.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.views.generic import TemplateView

from .access import Access, resolve_access
from .api import Member, Rule
from .audit import audit_record
from .errors import DomainError, NotFound
from .sealing import check_sealed

SEALED_UI_METHODS = ("dispatch", "setup")
#: The tag of "… started" flashes, which an operation's page drops once it has finished.
STARTED_TAG = "operation-started"


class OrgPage(TemplateView):
    """Base for every page under /orgs/<org>/."""

    #: The rule for reading the page, and for posting to it.
    rule: Rule = Member()
    post_rule: Rule | None = None
    #: Which navigation tab is active.
    nav = ""
    #: What the page is, for its <title> (pages about one object name it instead).
    title = ""

    org = None
    access: Access

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        check_sealed(cls, OrgPage, SEALED_UI_METHODS, "org pages")

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        try:
            self.access = resolve_access(request.user, kwargs.get("org", ""))
        except NotFound as exc:
            raise Http404 from exc
        self.org = self.access.org
        rule = self.post_rule if request.method == "POST" and self.post_rule else self.rule
        if not rule.allows(self.access, self):
            self.deny("page rule")
        return super().dispatch(request, *args, **kwargs)

    def deny(self, reason: str):
        audit_record(
            org=self.org,
            actor=self.request.user,
            action="access.denied",
            target_type="page",
            target_id="",
            changes={"method": self.request.method, "path": self.request.path, "reason": reason},
        )
        raise PermissionDenied(reason)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(org=self.org, access=self.access, nav=self.nav)
        context.setdefault("page_title", " · ".join(part for part in (self.title, self.org.name) if part))
        return context


def form_errors_from(form, exc: DomainError) -> None:
    """Show a service's field errors next to the form's fields (the rest on top)."""
    placed = False
    for path, messages_ in exc.fields.items():
        # "spec.utterances.0" belongs next to the form's "utterances" field.
        field = next((part for part in path.split(".") if part in form.fields), None)
        for message in messages_:
            if field is not None:
                form.add_error(field, message)
            else:
                form.add_error(None, f"{path}: {message}" if path else message)
            placed = True
    if not placed:
        form.add_error(None, exc.message)


def flash_error(request, exc: DomainError) -> None:
    messages.error(request, exc.message)


def context_processor(request):
    """The org switcher: every page knows the signed-in user's orgs."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    from accounts.selectors import orgs_for_user

    return {"my_orgs": list(orgs_for_user(user))}
