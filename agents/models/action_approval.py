"""A person in the loop at run time: a tool call that waits for an editor or manager of
the stage before it runs (the stage policy's `action_approvals`)."""

import uuid

from django.conf import settings
from django.db import models

from lifecycle.tenancy import TenantModel

from .agent import Agent
from .conversation import Conversation


class ActionApprovalStatus(models.TextChoices):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"


class ActionApproval(TenantModel):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    conversation = models.ForeignKey(Conversation, on_delete=models.PROTECT, related_name="+")
    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="+")
    stage = models.ForeignKey("accounts.Stage", on_delete=models.PROTECT, related_name="+")
    version = models.PositiveIntegerField()
    # The agent turn the call belongs to, and its place among that turn's waiting calls:
    # a live conversation's turn is run again after each decision, and each call finds
    # its decision by that place.
    turn = models.PositiveIntegerField()
    position = models.PositiveSmallIntegerField(default=1)
    tool_call_id = models.CharField(max_length=100)
    tool_name = models.CharField(max_length=100)
    # What the user had just said, for whoever decides; as the conversation showed it,
    # like the parameters: the stage's secret values masked.
    user_text = models.TextField(blank=True)
    parameters = models.JSONField(default=dict, blank=True)
    status = models.CharField(
        max_length=10, choices=ActionApprovalStatus.choices, default=ActionApprovalStatus.PENDING
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    comment = models.TextField(blank=True)
    requested_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField()
    # Live conversations only: the `seq` of the `tool_approval_requested` event, after
    # which the rest of the turn is numbered, and when that rest was produced.
    request_seq = models.PositiveIntegerField(default=0)
    continued_at = models.DateTimeField(null=True, blank=True)
    # An approved call's `tool_result` ({"result"} or {"error"}) once it ran: a turn run
    # again for a later call of the same turn does not run it twice.
    outcome = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-requested_at"]
        indexes = [
            models.Index(fields=["org", "status", "-requested_at"], name="action_approval_status"),
            models.Index(fields=["org", "stage", "version"], name="action_approval_stage"),
            models.Index(fields=["status", "expires_at"], name="action_approval_expiry"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["conversation", "turn", "position"], name="action_approval_one_per_call"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tool_name} ({self.status})"


class ConversationEvent(TenantModel):
    """What a live conversation produced after a decision, for the gateway's events
    endpoint: frames numbered on from the message's own answer."""

    id = models.BigAutoField(primary_key=True)
    conversation = models.ForeignKey(Conversation, on_delete=models.PROTECT, related_name="+")
    turn = models.PositiveIntegerField()
    seq = models.PositiveIntegerField()
    frame = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["conversation", "turn", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["conversation", "turn", "seq"], name="conversation_event_seq"),
        ]

    def __str__(self) -> str:
        return f"{self.frame.get('type')} #{self.seq}"
