"""The operation record: its statuses, the model, and the selectors that read it."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from ..tenancy import TenantModel


class OperationStatus(models.TextChoices):
    AWAITING_APPROVAL = "awaiting_approval"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE_STATUSES = (
    OperationStatus.AWAITING_APPROVAL,
    OperationStatus.QUEUED,
    OperationStatus.RUNNING,
)


FINISHED_STATUSES = (OperationStatus.SUCCEEDED, OperationStatus.FAILED, OperationStatus.CANCELLED)


# The lease owner of a parent whose handler is done while some of its children still run.
WAITING_FOR_CHILDREN = "children"


class Operation(TenantModel):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=64)
    status = models.CharField(max_length=20, choices=OperationStatus.choices, default=OperationStatus.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)
    params = models.JSONField(default=dict, blank=True)
    result = models.JSONField(default=dict, blank=True)
    error = models.JSONField(null=True, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )
    # Which stage the work concerns: members with a role there may follow it.
    stage = models.ForeignKey(
        "accounts.Stage", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    # At most one active operation per non-empty key, e.g. "promote:<lineage>:<stage>".
    exclusive_key = models.CharField(max_length=200, blank=True)
    idempotency_key = models.CharField(max_length=200, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The delivery that runs the work holds a lease, renewed by progress and heartbeats:
    # a redelivery while the lease is live leaves the running one alone; once it has
    # expired (the worker died) a redelivery takes over.
    lease_owner = models.CharField(max_length=64, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    # Running work stops at its next progress report or heartbeat once this is set.
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    parent = models.ForeignKey(
        "self", on_delete=models.CASCADE, null=True, blank=True, related_name="children"
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["org", "exclusive_key"],
                condition=Q(status__in=ACTIVE_STATUSES) & ~Q(exclusive_key=""),
                name="operation_one_active_per_key",
            ),
        ]
        indexes = [models.Index(fields=["org", "-created_at"], name="operation_org_time")]

    def __str__(self) -> str:
        return f"{self.kind} {self.status}"

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_STATUSES


def operations_visible_to(access, queryset=None):
    """Operations the caller may follow: their own, their stages', or all for admins."""
    operations = queryset if queryset is not None else Operation.objects.for_org(access.org)
    operations = operations.select_related("stage", "requested_by").order_by("-created_at")
    if access.is_admin:
        return operations
    return operations.filter(Q(requested_by=access.user) | Q(stage_id__in=access.stage_ids_with("viewer")))


def operation_children(operation: Operation):
    """The operation's children, oldest first."""
    return Operation.objects.for_org(operation.org_id).filter(parent=operation).order_by("created_at")
