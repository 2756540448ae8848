"""The tenant-scoped model base.

Every tenant-owned row carries `org`. Its default manager refuses to run a query that
has not been scoped to an org, so a forgotten filter fails loudly instead of leaking
another tenant's rows. The only way around it is `dangerously_unscoped()`, which grep
finds.
"""

from __future__ import annotations

import sys

from django.db import models
from django.db.models.options import Options
from django.db.models.signals import class_prepared
from django.db.models.sql import Query


class UnscopedQueryError(RuntimeError):
    """A tenant model was queried without an org."""


class TenantQuery(Query):
    """A tenant queryset's SQL, which carries whether its queryset was scoped.

    `Subquery(qs)`, `Exists(qs)` and `OuterRef` lookups take `qs.query` and compile it
    inside another statement, past every queryset method that checks the scope; a query
    compiles as part of another one only through `as_sql`, so the check is here.
    """

    org_scoped = False

    def as_sql(self, compiler, connection):
        if not self.org_scoped:
            raise UnscopedQueryError(
                f"{self.model.__name__} used in a subquery without an org. Use "
                f"{self.model.__name__}.objects.for_org(org) inside Subquery()/Exists() too."
            )
        return super().as_sql(compiler, connection)


class TenantQuerySet(models.QuerySet):
    _org_scoped = False

    def __init__(self, model=None, query=None, using=None, hints=None):
        super().__init__(model, query or TenantQuery(model), using, hints)

    # The query leaves the queryset through this property (Subquery reads it directly):
    # it takes the queryset's scope with it.
    @property
    def query(self):
        query = models.QuerySet.query.fget(self)
        query.org_scoped = self._org_scoped
        return query

    @query.setter
    def query(self, value):
        models.QuerySet.query.fset(self, value)

    def _clone(self):
        clone = super()._clone()
        clone._org_scoped = self._org_scoped
        return clone

    def _mark(self, scoped: bool = True) -> TenantQuerySet:
        self._org_scoped = scoped
        return self

    def for_org(self, org) -> TenantQuerySet:
        if org is None:
            raise UnscopedQueryError(f"{self.model.__name__}: for_org() needs an org, got None")
        org_id = getattr(org, "pk", org)
        return self.filter(org_id=org_id)._mark()

    def for_org_slug(self, slug: str) -> TenantQuerySet:
        """Scoped to the live org with this slug, joined in the same query: for routes
        that name the org in the URL but are not a member's (the gateway's stage keys)."""
        return self.filter(org__slug=slug, org__archived_at__isnull=True)._mark()

    def none(self) -> TenantQuerySet:
        # An empty queryset cannot leak anything (schema generation relies on it).
        return super().none()._mark()

    def _require_scope(self) -> None:
        if not self._org_scoped:
            raise UnscopedQueryError(
                f"{self.model.__name__} queried without an org. Use "
                f"{self.model.__name__}.objects.for_org(org)."
            )

    # Every way a queryset reaches the database passes through one of these.
    def _fetch_all(self):
        if self._result_cache is None:
            self._require_scope()
        return super()._fetch_all()

    def iterator(self, *args, **kwargs):
        self._require_scope()
        return super().iterator(*args, **kwargs)

    def count(self):
        self._require_scope()
        return super().count()

    def exists(self):
        self._require_scope()
        return super().exists()

    def aggregate(self, *args, **kwargs):
        self._require_scope()
        return super().aggregate(*args, **kwargs)

    def update(self, **kwargs):
        self._require_scope()
        return super().update(**kwargs)

    def delete(self):
        self._require_scope()
        return super().delete()

    def _raw_delete(self, using):
        self._require_scope()
        return super()._raw_delete(using)

    def in_bulk(self, *args, **kwargs):
        self._require_scope()
        return super().in_bulk(*args, **kwargs)

    def explain(self, *args, **kwargs):
        self._require_scope()
        return super().explain(*args, **kwargs)

    def contains(self, obj):
        self._require_scope()
        return super().contains(obj)

    def aiterator(self, *args, **kwargs):
        # Django's async iterator reads through the compiler, not _fetch_all or iterator().
        self._require_scope()
        return super().aiterator(*args, **kwargs)

    def _update(self, values):
        self._require_scope()
        return super()._update(values)

    def raw(self, *args, **kwargs):
        # Raw SQL ignores every filter of the queryset, for_org() included: a raw read of a
        # tenant table belongs in an allow-listed module with `org_id = %s` (tests/test_meta.py).
        raise UnscopedQueryError(
            f"{self.model.__name__}.objects.raw() cannot be scoped to an org; "
            "use the ORM with for_org(), or a cursor in an allow-listed module."
        )

    def resolve_expression(self, *args, **kwargs):
        # `filter(x__in=Model.objects.values("pk"))`: the inner queryset runs as a subquery,
        # never through _fetch_all, so it is checked here.
        self._require_scope()
        return super().resolve_expression(*args, **kwargs)

    # Combining keeps the scope only when every part is scoped: `for_org(a) | all()` would
    # otherwise inherit the left side's mark and read every org's rows.
    def _combined(self, combined, *others) -> TenantQuerySet:
        scoped = self._org_scoped and all(getattr(other, "_org_scoped", False) for other in others)
        return combined._chain()._mark(scoped)

    def __or__(self, other):
        return self._combined(super().__or__(other), other)

    def __and__(self, other):
        return self._combined(super().__and__(other), other)

    def __xor__(self, other):
        return self._combined(super().__xor__(other), other)

    def _combinator_query(self, combinator, *other_qs, **kwargs):
        # union(), intersection() and difference() all come through here.
        return self._combined(super()._combinator_query(combinator, *other_qs, **kwargs), *other_qs)


class TenantManager(models.Manager.from_queryset(TenantQuerySet)):
    def get_queryset(self) -> TenantQuerySet:
        qs = super().get_queryset()
        # A related manager (`agent.components`) is built from an instance that was
        # itself loaded through a scoped query, and filters by it: that is scoped.
        instance = getattr(self, "instance", None) or (self._hints or {}).get("instance")
        if instance is not None and _belongs_to_an_org(instance):
            qs._mark()
        return qs

    def dangerously_unscoped(self) -> TenantQuerySet:
        """Every org's rows. Only for the Django admin, migrations and maintenance."""
        return super().get_queryset()._mark()

    def _scoped_by(self, **filters) -> TenantQuerySet:
        """For subclasses whose rows have a second safe scope (a user's own rows)."""
        return super().get_queryset().filter(**filters)._mark()


# Modules whose use of the base manager only ever follows rows Django already holds: FK
# and one-to-one descriptors, refresh_from_db(), save()'s UPDATE, deletion cascades, FK
# validation, `|` on sliced querysets, limit_choices_to, generic relations.
_ORM_MODULES = (
    "django.db.models.",
    "django.db.backends.",
    "django.forms.models",
    "django.contrib.contenttypes.",
)
_MANAGER_MODULES = ("django.db.models.manager", __name__)


def _called_by_the_orm() -> bool:
    frame = sys._getframe(2)
    while frame is not None and frame.f_globals.get("__name__", "") in _MANAGER_MODULES:
        frame = frame.f_back
    return frame is not None and frame.f_globals.get("__name__", "").startswith(_ORM_MODULES)


class TenantBaseManager(TenantManager):
    """The base manager of tenant models: scoped for Django's own row-following, refused
    (like the default manager) when application code reaches for `Model._base_manager`."""

    def get_queryset(self) -> TenantQuerySet:
        qs = super().get_queryset()
        if not qs._org_scoped and _called_by_the_orm():
            qs._mark()
        return qs


def _belongs_to_an_org(instance) -> bool:
    from accounts.models import Organization

    # Read the loaded value only: on a row fetched with .only() that left `org_id` out,
    # getattr would load it through refresh_from_db, whose query asks this again, forever.
    return isinstance(instance, Organization) or instance.__dict__.get("org_id") is not None


class TenantModel(models.Model):
    org = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, related_name="+")

    objects = TenantManager()

    class Meta:
        abstract = True


class _TenantOptions(Options):
    """A tenant model's options, whose base manager is a TenantBaseManager."""

    @property
    def base_manager(self) -> TenantBaseManager:
        manager = self.__dict__.get("_tenant_base_manager")
        if manager is None:
            manager = TenantBaseManager()
            manager.name = "_base_manager"
            manager.model = self.model
            manager.auto_created = True
            self.__dict__["_tenant_base_manager"] = manager
        return manager


def _seal_base_manager(sender, **kwargs) -> None:
    # Django's own machinery (FK descriptors, cascades, refresh_from_db) uses the base
    # manager, which Django makes a plain, unscoped Manager that anyone can reach as
    # `Model._base_manager`. Neither Meta.base_manager_name nor a second manager would
    # leave the migration state alone (both show up in every tenant model's migrations),
    # so the options object itself answers with the tenant base manager.
    if issubclass(sender, TenantModel) and not sender._meta.abstract:
        sender._meta.__class__ = _TenantOptions


class_prepared.connect(_seal_base_manager)
