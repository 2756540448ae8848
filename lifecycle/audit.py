"""The audit log: append-only, written through `audit_record` and nothing else.

Services write one event per change; the sealed API base writes one for every denied
decision. Rows are never updated or deleted: the ORM refuses here, and PostgreSQL
refuses with a trigger (migration 0002). Nothing cascades into the log.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from . import context
from .redaction import redact
from .tenancy import TenantManager, TenantModel, TenantQuerySet


class AppendOnlyError(RuntimeError):
    """Audit events cannot be changed or removed."""


class AuditQuerySet(TenantQuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError("The audit log is append-only.")

    def delete(self):
        raise AppendOnlyError("The audit log is append-only.")

    def _raw_delete(self, using):
        raise AppendOnlyError("The audit log is append-only.")

    def bulk_update(self, *args, **kwargs):
        raise AppendOnlyError("The audit log is append-only.")


class AuditManager(TenantManager.from_queryset(AuditQuerySet)):
    pass


class AuditEvent(TenantModel):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # PROTECT, never CASCADE or SET_NULL: users are deactivated and orgs archived.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    actor_email = models.CharField(max_length=254, blank=True)
    action = models.CharField(max_length=64)
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_repr = models.CharField(max_length=200, blank=True)
    changes = models.JSONField(default=dict, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = AuditManager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["org", "-created_at"], name="audit_org_time"),
            models.Index(fields=["org", "action"], name="audit_org_action"),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_email or 'system'} {self.action}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError("The audit log is append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("The audit log is append-only.")


def audit_record(
    *,
    org,
    actor,
    action: str,
    target=None,
    target_type: str = "",
    target_id: str = "",
    target_repr: str = "",
    changes: dict | None = None,
) -> AuditEvent:
    """Write one audit event. `changes` is a summary; anything secret-looking is masked."""
    if target is not None:
        target_type = target_type or target._meta.model_name
        target_id = target_id or str(target.pk)
        target_repr = target_repr or str(target)
    actor = actor if getattr(actor, "is_authenticated", False) else None
    return AuditEvent.objects.create(
        org=org,
        actor=actor,
        actor_email=actor.email if actor else "",
        action=action,
        target_type=target_type,
        target_id=target_id,
        target_repr=target_repr[:200],
        changes=redact(changes or {}),
        request_id=context.request_id_var.get(),
        ip=context.client_ip_var.get(),
    )


def audit_visible_to(access, queryset=None):
    """Events the caller may read: all of them for admins, their own for members."""
    events = queryset if queryset is not None else AuditEvent.objects.for_org(access.org)
    if not access.is_admin:
        events = events.filter(actor=access.user)
    return events.order_by("-created_at")


AUDIT_CSV_COLUMNS = [
    "created_at",
    "actor",
    "action",
    "target_type",
    "target_id",
    "target",
    "changes",
    "request_id",
    "ip",
]


def audit_csv_row(event: AuditEvent) -> list:
    import json

    from .csvsafe import csv_row

    return csv_row(
        [
            event.created_at.isoformat(),
            event.actor_email,
            event.action,
            event.target_type,
            event.target_id,
            event.target_repr,
            json.dumps(event.changes, sort_keys=True),
            event.request_id,
            event.ip or "",
        ]
    )
