"""The tenant-scoped model base.

Every tenant-owned row carries `org`. Its default manager refuses to run a query that
has not been scoped to an org, so a forgotten filter fails loudly instead of leaking
another tenant's rows. The only way around it is `dangerously_unscoped()`, which grep
finds.
"""

from __future__ import annotations

from django.db import models


class UnscopedQueryError(RuntimeError):
    """A tenant model was queried without an org."""


class TenantQuerySet(models.QuerySet):
    _org_scoped = False

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


def _belongs_to_an_org(instance) -> bool:
    from accounts.models import Organization

    return isinstance(instance, Organization) or getattr(instance, "org_id", None) is not None


class TenantModel(models.Model):
    org = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, related_name="+")

    objects = TenantManager()

    class Meta:
        # Django's own machinery (FK descriptors, cascades, refresh_from_db) uses the
        # base manager, which stays a plain one: it only ever follows a known row.
        abstract = True
