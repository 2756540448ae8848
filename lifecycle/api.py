"""The sealed API base classes.

Every org-scoped endpoint derives from `OrgScopedViewSet` or `OrgScopedAPIView`. The base
resolves `{org}` from the URL once, checks membership, and hands the subclass a
queryset already scoped to the org (and to the stages the caller can see). Subclasses
cannot override `get_queryset`, `get_object` or `get_permissions`: they narrow the
scoped queryset in `refine_queryset` and declare a rule for every action.

- What you may not see is missing (404, the same body as a missing id).
- What you may see but not do is 403, and every denial is written to the audit log.
- Single objects carry an ETag; a stale If-Match on a write is 412.
- Unsafe requests may carry an Idempotency-Key, replayed for 24 h.

Routes that authenticate differently or are not under an org are listed in
`UNSCOPED_ROUTES`; the meta-test fails on any other API view that bypasses the base.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions as drf
from rest_framework.permissions import IsAuthenticated
from rest_framework.settings import api_settings
from rest_framework.views import APIView
from rest_framework.viewsets import GenericViewSet

from accounts.models import Organization

from .access import Access, resolve_access
from .audit import audit_record
from .denials import audit_outsider, record_csrf_failure
from .errors import Forbidden, NotFound
from .etags import check_if_match, etag_of
from .idempotency import Replay, idempotency_abandon, idempotency_begin, idempotency_complete, replay_response
from .sealing import check_sealed

# URL names of API routes that deliberately do not use the org-scoped base: not under an
# org at all, or (STAGE_KEY_ROUTES) authenticated by a stage's API key instead of a member.
STAGE_KEY_ROUTES = {"api:run-conversations", "api:run-messages", "api:run-rating", "api:run-events"}
UNSCOPED_ROUTES = STAGE_KEY_ROUTES | {
    "api:auth-token",
    "api:auth-tokens",
    "api:auth-token-detail",
    "api:auth-password",
    "api:me",
    "api:orgs",
    "api:schema",
    "api:docs",
    "api:redoc",
    "api:not-found",
}

SEALED_METHODS = (
    "get_queryset",
    "get_object",
    "get_permissions",
    "initial",
    "check_permissions",
    "check_object_permissions",
)
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


# --- rules ------------------------------------------------------------------------------
class Rule:
    """A permission an action needs. `obj` is None for the request-level check."""

    def allows(self, access: Access, view, obj=None) -> bool:
        raise NotImplementedError

    def __or__(self, other: Rule) -> Rule:
        return AnyOf(self, other)


class AnyOf(Rule):
    def __init__(self, *rules: Rule):
        self.rules = rules

    def allows(self, access, view, obj=None):
        return any(rule.allows(access, view, obj) for rule in self.rules)


class Member(Rule):
    """Any member of the org (for objects: anyone who can see it)."""

    def allows(self, access, view, obj=None):
        return True


class OrgAdmin(Rule):
    def allows(self, access, view, obj=None):
        return access.is_admin


class OrgOwner(Rule):
    def allows(self, access, view, obj=None):
        return access.is_owner


class ObjectAction(Rule):
    """view/change/delete/manage on the object (or the nested resource's parent):
    its stage role or a direct grant."""

    def __init__(self, action: str):
        self.action = action

    def allows(self, access, view, obj=None):
        if obj is None:
            return True  # decided once the object is known (or by the service)
        return access.can(self.action, obj)


class Requester(Rule):
    """The user who asked for the object (an operation, a proposal)."""

    def __init__(self, field: str = "requested_by_id"):
        self.field = field

    def allows(self, access, view, obj=None):
        return obj is None or getattr(obj, self.field) == access.user.pk


# --- the bases --------------------------------------------------------------------------
class KernelAPIMixin:
    """Envelope, ETags and idempotency for every API view, scoped or not."""

    _idempotency_record = None
    pagination_class = api_settings.DEFAULT_PAGINATION_CLASS

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        self.org_initial(request, *args, **kwargs)
        if getattr(request.user, "is_authenticated", False):  # keys are scoped to a user
            self._idempotency_record = idempotency_begin(request)

    def org_initial(self, request, *args, **kwargs):
        """Hook for the org-scoped base."""

    def paginated(self, queryset, serializer_class, **context):
        """A cursor-paginated response of `queryset`, for views and viewsets alike."""
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(queryset, self.request, view=self)
        data = serializer_class(page, many=True, context={"request": self.request, **context}).data
        return paginator.get_paginated_response(data)

    def handle_exception(self, exc):
        if isinstance(exc, Replay):
            return replay_response(exc.record)
        if isinstance(exc, drf.PermissionDenied) and str(exc.detail).startswith("CSRF Failed"):
            # DRF's session authentication checks CSRF itself, before the org is resolved.
            record_csrf_failure(self.request._request, str(exc.detail))
        return super().handle_exception(exc)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        data = getattr(response, "data", None)
        if (
            response.status_code in (200, 201)
            and isinstance(data, dict)
            and "results" not in data
            and not response.has_header("ETag")
        ):
            response["ETag"] = etag_of(data)
        record = self._idempotency_record
        if record is not None:
            self._idempotency_record = None
            if response.status_code >= 500:
                idempotency_abandon(record)
            else:
                idempotency_complete(record, response)
        return response


class PublicAPIView(KernelAPIMixin, APIView):
    """Base for the few API views that are not under an org (see UNSCOPED_ROUTES)."""


class _Undeclared:
    """`stage_field` before an endpoint declares it: falsy, and refused at class creation."""

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "UNDECLARED"


UNDECLARED = _Undeclared()


class OrgScopedMixin(KernelAPIMixin):
    #: The tenant model this endpoint serves.
    model = None
    #: Path to the Stage foreign key when rows belong to a stage; None for org-wide rows
    #: (and for nested rows, whose parent's stage decides). Every endpoint declares it:
    #: a default of None made stage visibility something a new endpoint could forget.
    stage_field: str | None = UNDECLARED
    #: The rule each action needs. Every action must have one.
    rules: dict[str, Rule] = {}
    lookup_field = "pk"
    lookup_url_kwarg = None
    #: For nested resources (/agents/{agent_id}/components/): the parent's model, the URL
    #: kwarg naming it, the child's field pointing at it, and the parent's stage field.
    parent_model = None
    parent_lookup_field = "pk"
    parent_url_kwarg = "agent_id"
    parent_field = "agent"
    parent_stage_field: str | None = "stage"

    org: Organization
    access: Access
    _object = None
    _parent = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__module__ == __name__:
            return
        check_sealed(
            cls,
            OrgScopedMixin,
            SEALED_METHODS,
            "org-scoped views (narrow the queryset in refine_queryset() and declare rules)",
        )
        missing = [action for action in cls._declared_actions() if action not in cls.rules]
        if missing:
            raise TypeError(f"{cls.__qualname__} has no rule for: {', '.join(sorted(missing))}")
        if cls._declared_actions() and cls.stage_field is UNDECLARED:
            raise TypeError(
                f"{cls.__qualname__} must declare stage_field: the path to its rows' Stage, "
                "or None for org-wide rows."
            )

    @classmethod
    def _declared_actions(cls) -> list[str]:
        names = [m for m in ("get", "post", "put", "patch", "delete") if hasattr(cls, m)]
        if issubclass(cls, GenericViewSet):
            standard = ("list", "create", "retrieve", "update", "partial_update", "destroy")
            names = [m for m in standard if hasattr(cls, m)]
            names += [action.__name__ for action in cls.get_extra_actions()]
        return names

    # --- sealed ---------------------------------------------------------------------
    def get_permissions(self):
        return [IsAuthenticated()]

    def check_permissions(self, request):
        super().check_permissions(request)

    def check_object_permissions(self, request, obj):
        rule = self._rule()
        if not rule.allows(self.access, self, self.permission_target(obj)):
            raise Forbidden()

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)

    def org_initial(self, request, *args, **kwargs):
        if not hasattr(self, request.method.lower()):
            raise drf.MethodNotAllowed(request.method)
        slug = kwargs.get("org", "")
        try:
            self.access = resolve_access(request.user, slug)
        except NotFound:
            self._audit_outsider(request, slug)
            raise
        self.org = self.access.org
        if self.parent_model is not None:
            self.get_parent()  # a parent you cannot see makes everything under it missing
        if (self.lookup_url_kwarg or self.lookup_field) in kwargs:
            # A single object: what you cannot see is missing before it is forbidden,
            # so the object is looked up (and its rule checked) before anything else.
            self.get_object()
        elif not self._rule().allows(self.access, self, self.permission_target(None)):
            raise Forbidden()

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return self.model.objects.none()
        queryset = self.model.objects.for_org(self.org)
        if self.stage_field:
            queryset = self.access.visible(queryset, stage_field=self.stage_field)
        if self.parent_model is not None:
            queryset = queryset.filter(**{self.parent_field: self.get_parent()})
        return self.refine_queryset(queryset)

    def get_parent(self):
        """The visible parent of a nested resource (an agent's components), or 404."""
        if self._parent is None:
            value = self.kwargs.get(self.parent_url_kwarg)
            parents = self.parent_model.objects.for_org(self.org)
            if self.parent_stage_field:
                parents = self.access.visible(parents, stage_field=self.parent_stage_field)
            try:
                parent = parents.filter(**{self.parent_lookup_field: value}).first()
            except (ValueError, TypeError, DjangoValidationError):
                parent = None
            if parent is None:
                self._audit_invisible(
                    self.parent_model, self.parent_stage_field, self.parent_lookup_field, value
                )
                raise NotFound()
            self._parent = parent
        return self._parent

    def get_object(self):
        if self._object is not None:
            return self._object
        url_kwarg = self.lookup_url_kwarg or self.lookup_field
        value = self.kwargs.get(url_kwarg)
        try:
            obj = self.get_queryset().filter(**{self.lookup_field: value}).first()
        except (ValueError, TypeError, DjangoValidationError):
            obj = None
        if obj is None:
            self._audit_invisible(self.model, self.stage_field, self.lookup_field, value)
            raise NotFound()
        self.check_object_permissions(self.request, obj)
        if self.request.method in UNSAFE:
            check_if_match(self.request.headers.get("If-Match"), etag_of(self.represent(obj)))
        self._object = obj
        return obj

    # --- hooks for subclasses -------------------------------------------------------
    def refine_queryset(self, queryset):
        """Narrow (filter, order, select_related) the already-scoped queryset."""
        return queryset

    def permission_target(self, obj):
        """What a rule is asked about: the object, or for nested resources their parent."""
        return self.get_parent() if self.parent_model is not None else obj

    def precondition(self, representation: dict) -> None:
        """412 on a stale If-Match, for endpoints that do not go through get_object()."""
        check_if_match(self.request.headers.get("If-Match"), etag_of(representation))

    def if_match_guard(self, represent=None):
        """The If-Match check again, for a service to run on the row it has locked.

        get_object() answers a stale If-Match early, but two writes that both passed it
        would both apply (check-then-act). A service given this guard recomputes the ETag
        from the locked row inside its transaction: of two writes made from one state,
        one succeeds and the other gets 412. None without If-Match (the write goes through).
        """
        header = self.request.headers.get("If-Match")
        if not header:
            return None
        represent = represent or self.represent
        return lambda locked: check_if_match(header, etag_of(represent(locked)))

    def represent(self, obj) -> dict:
        """The representation an ETag is computed from: what GET returns."""
        return self.get_serializer(obj).data

    # --- internals ------------------------------------------------------------------
    def _action(self) -> str:
        return getattr(self, "action", None) or self.request.method.lower()

    def _rule(self) -> Rule:
        action = self._action()
        try:
            return self.rules[action]
        except KeyError:
            if action in ("options", "head", "metadata"):
                return Member()
            raise

    def handle_exception(self, exc):
        if isinstance(exc, (drf.PermissionDenied, Forbidden)) and hasattr(self, "access"):
            audit_record(
                org=self.access.org,
                actor=self.request.user,
                action="access.denied",
                target_type=self.model._meta.model_name if self.model else "",
                target_id=str(self.kwargs.get(self.lookup_url_kwarg or self.lookup_field, ""))[:64],
                changes={
                    "method": self.request.method,
                    "path": self.request.path,
                    "reason": str(getattr(exc, "detail", exc)),
                },
            )
        return super().handle_exception(exc)

    def _audit_invisible(self, model, stage_field, lookup_field, value) -> None:
        """An object that exists in the org but is hidden from the caller is a denial."""
        if stage_field is None or value is None:
            return
        try:
            exists = model.objects.for_org(self.org).filter(**{lookup_field: value}).exists()
        except (ValueError, TypeError, DjangoValidationError):
            return
        if exists:
            audit_record(
                org=self.org,
                actor=self.request.user,
                action="access.denied",
                target_type=model._meta.model_name,
                target_id=str(value)[:64],
                changes={
                    "method": self.request.method,
                    "path": self.request.path,
                    "reason": "no role in stage",
                },
            )

    def _audit_outsider(self, request, slug: str) -> None:
        audit_outsider(user=request.user, slug=slug, method=request.method, path=request.path)


class OrgScopedViewSet(OrgScopedMixin, GenericViewSet):
    """Base for every org-scoped resource."""


class OrgScopedAPIView(OrgScopedMixin, APIView):
    """Base for org-scoped endpoints that are not resources (previews, reports)."""
