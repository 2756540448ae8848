"""Change approvals: a request per change that waits for people, and their decisions.

A promote, pull or release into a stage whose policy requires approvals creates its
operation in `awaiting_approval` and one ApprovalRequest beside it. Managers of the
target stage decide; the last approval queues the operation, any rejection cancels it.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from lifecycle.tenancy import TenantModel


class ApprovalKind(models.TextChoices):
    PROMOTE = "promote"
    PULL = "pull"
    BACKPORT = "backport"
    RELEASE = "release"


class ApprovalStatus(models.TextChoices):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class DecisionChoice(models.TextChoices):
    APPROVE = "approve"
    REJECT = "reject"


class ApprovalRequest(TenantModel):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=10, choices=ApprovalKind.choices)
    status = models.CharField(max_length=10, choices=ApprovalStatus.choices, default=ApprovalStatus.PENDING)
    # The agent being changed: the promoted agent (its clone does not exist yet), the
    # agent pulled into, or the agent released.
    agent = models.ForeignKey("agents.Agent", on_delete=models.PROTECT, related_name="+")
    # Whose content moves (promote, pull); None for a release of the agent's own version.
    source_agent = models.ForeignKey(
        "agents.Agent", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    target_stage = models.ForeignKey("accounts.Stage", on_delete=models.PROTECT, related_name="+")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    # Copied from the policy when asked: a later policy change does not move the goalposts.
    required = models.PositiveSmallIntegerField()
    groups = models.JSONField(default=list, blank=True)  # [{"name","members":[user id],"required"}]
    operation = models.OneToOneField("lifecycle.Operation", on_delete=models.PROTECT, related_name="+")
    reason = models.TextField(blank=True, max_length=10000)  # the changelog the requester gave
    # What the approvers are shown: the source's content when the request was made. A
    # different fingerprint later means they would approve something else.
    fingerprint = models.CharField(max_length=64, blank=True)
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-created_at", "id"]
        constraints = [
            # One open request per change: a second promote of the same agent into the same
            # stage is refused while the first waits (its operation's key refuses it too).
            models.UniqueConstraint(
                fields=["org", "agent", "kind", "target_stage"],
                condition=Q(status="pending"),
                name="approval_one_pending_per_change",
            ),
        ]
        indexes = [
            models.Index(fields=["org", "status", "-created_at"], name="approval_org_status_time"),
            models.Index(fields=["status", "expires_at"], name="approval_status_expiry"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} approval ({self.status})"

    @property
    def change_noun(self) -> str:
        """How people say it: "the promotion", not "the promote"."""
        return {"promote": "promotion", "backport": "back-port"}.get(self.kind, self.kind)

    @property
    def is_open(self) -> bool:
        return self.status == ApprovalStatus.PENDING


class ApprovalDecision(TenantModel):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    request = models.ForeignKey(ApprovalRequest, on_delete=models.CASCADE, related_name="decisions")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decision = models.CharField(max_length=10, choices=DecisionChoice.choices)
    comment = models.TextField(blank=True, max_length=5000)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["request", "user"], name="approval_one_decision_per_user"),
        ]

    def __str__(self) -> str:
        return f"{self.decision} by {self.user_id}"
