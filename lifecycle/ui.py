"""The sealed base for org-scoped UI pages, and what every page's template gets.

Like the API base: the org comes from the URL, membership is checked once, a page you
may not see is a 404 and an action you may not take is a 403 written to the audit log.
"""

from __future__ import annotations

import contextvars

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django.views.generic import TemplateView

from .access import Access, resolve_access
from .api import UNDECLARED, Member, Rule
from .audit import audit_record
from .denials import audit_outsider
from .errors import DomainError, Forbidden, NotFound
from .sealing import check_sealed

SEALED_UI_METHODS = ("dispatch", "setup", "deny", "record_denial", "resolve_object")
# The page handling the current request: a service's Forbidden shown as a form error or a
# flash (with a 200) is still a denial, and is recorded against it.
_current_page: contextvars.ContextVar[OrgPage | None] = contextvars.ContextVar("org_page", default=None)
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
    _denial_recorded = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        check_sealed(cls, OrgPage, SEALED_UI_METHODS, "org pages")

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        try:
            self.access = resolve_access(request.user, kwargs.get("org", ""))
        except NotFound as exc:
            audit_outsider(
                user=request.user, slug=kwargs.get("org", ""), method=request.method, path=request.path
            )
            raise Http404 from exc
        self.org = self.access.org
        # What you cannot see is missing (404) before it is forbidden (403).
        page_object = self.resolve_object()
        rule = self.post_rule if request.method == "POST" and self.post_rule else self.rule
        if not rule.allows(self.access, self, page_object):
            self.deny("page rule")
        token = _current_page.set(self)
        try:
            response = super().dispatch(request, *args, **kwargs)
        except Forbidden as exc:
            # A service's refusal nobody caught: a 403 page, recorded like any other.
            self.record_denial(exc.message)
            raise PermissionDenied(exc.message) from exc
        finally:
            _current_page.reset(token)
        if response.status_code == 403 and not self._denial_recorded:
            # A view that answered a refusal itself (a dialog re-rendered with the error).
            self.record_denial("refused")
        return response

    def deny(self, reason: str):
        self.record_denial(reason)
        raise PermissionDenied(reason)

    def resolve_object(self):
        """The object the page is about (OrgObjectPage); None for org-wide pages."""
        return None

    def record_denial(self, reason: str, target=None) -> None:
        """Write the access.denied entry for this request (once)."""
        if self._denial_recorded:
            return
        self._denial_recorded = True
        audit_record(
            org=self.org,
            actor=self.request.user,
            action="access.denied",
            target=target,
            target_type="" if target is not None else "page",
            target_id="",
            changes={"method": self.request.method, "path": self.request.path, "reason": reason[:200]},
        )

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(org=self.org, access=self.access, nav=self.nav)
        context.setdefault("page_title", " · ".join(part for part in (self.title, self.org.name) if part))
        return context


class OrgObjectPage(OrgPage):
    """Base for pages about one object (an agent): found through the caller's stage
    visibility, 404 when missing or invisible, then the page rule asked about it.

    A page used to look its object up itself and had to remember `agents_visible`; here
    the lookup is sealed and the scope a required declaration, as on the API base.
    """

    #: The tenant model, the path to its Stage (None for org-wide rows: declared, never
    #: defaulted), and the URL kwarg naming it.
    model = None
    stage_field: str | None = UNDECLARED
    lookup_field = "pk"
    lookup_url_kwarg = "pk"

    object = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        check_sealed(cls, OrgObjectPage, ("resolve_object",), "object pages")
        if cls.model is not None and cls.stage_field is UNDECLARED:
            raise TypeError(
                f"{cls.__qualname__} must declare stage_field: the path to its object's Stage, "
                "or None for org-wide rows."
            )

    def resolve_object(self):
        objects = self.model.objects.for_org(self.org)
        if self.stage_field:
            objects = self.access.visible(objects, stage_field=self.stage_field)
        value = self.kwargs.get(self.lookup_url_kwarg)
        try:
            obj = self.refine_object_queryset(objects).filter(**{self.lookup_field: value}).first()
        except (ValueError, TypeError, DjangoValidationError):
            obj = None
        if obj is None:
            if self.stage_field and self._exists_hidden(value):
                self.record_denial("no role in stage")
            raise Http404
        self.object = obj
        return obj

    def refine_object_queryset(self, queryset):
        """select_related / annotations for the page (never a wider scope)."""
        return queryset

    def _exists_hidden(self, value) -> bool:
        try:
            return self.model.objects.for_org(self.org).filter(**{self.lookup_field: value}).exists()
        except (ValueError, TypeError, DjangoValidationError):
            return False


def record_refusal(exc: DomainError) -> None:
    """A service's Forbidden, answered on the page: record it as a denial."""
    page = _current_page.get()
    if isinstance(exc, Forbidden) and page is not None:
        page.record_denial(exc.message)


def form_errors_from(form, exc: DomainError) -> None:
    """Show a service's field errors next to the form's fields (the rest on top)."""
    record_refusal(exc)
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
    record_refusal(exc)
    messages.error(request, exc.message)


def context_processor(request):
    """The org switcher: every page knows the signed-in user's orgs."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    from accounts.selectors import orgs_for_user

    return {"my_orgs": list(orgs_for_user(user))}
