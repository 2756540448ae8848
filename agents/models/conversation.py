import uuid

from django.conf import settings
from django.db import models

from lifecycle.tenancy import TenantModel

from .agent import Agent


class ConversationSource(models.TextChoices):
    CONSOLE = "console"
    TEST_RUN = "test_run"
    SOAK = "soak"
    LIVE = "live"


class Conversation(TenantModel):
    """Every conversation, from the console to live traffic: what gates and monitoring read."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="conversations")
    stage = models.ForeignKey("accounts.Stage", on_delete=models.PROTECT, related_name="+")
    version = models.PositiveIntegerField()
    draft = models.BooleanField(default=False, help_text="Ran the working copy, not a saved version.")
    source = models.CharField(max_length=10, choices=ConversationSource.choices)
    # Who: a signed-in user (console) or the client's own id for an end user (live).
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    end_user = models.CharField(max_length=200, blank=True)
    # Dynamic variables and overrides given at the start; the engine's own state (a skill
    # waiting for a slot) between turns.
    variables = models.JSONField(default=dict, blank=True)
    overrides = models.JSONField(default=dict, blank=True)
    state = models.JSONField(default=dict, blank=True)
    turn_count = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    tokens_in = models.PositiveIntegerField(default=0)
    tokens_out = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    rating = models.PositiveSmallIntegerField(null=True, blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [
            models.Index(fields=["org", "agent", "-started_at"], name="conversation_agent_time"),
            models.Index(fields=["org", "stage", "source", "-started_at"], name="conversation_stage_source"),
            # A stage's spend in a month (rollouts.spending): a range on started_at, summed
            # by agent and source from the index alone (the other columns are there so
            # PostgreSQL never visits the table).
            models.Index(
                fields=["org", "stage", "started_at", "agent", "source", "cost"], name="conversation_spend"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.source} conversation {self.pk}"


class Turn(TenantModel):
    """One message: the user's, or the agent's with its latency, usage, tools and errors."""

    id = models.BigAutoField(primary_key=True)
    conversation = models.ForeignKey(Conversation, on_delete=models.PROTECT, related_name="turns")
    index = models.PositiveIntegerField()
    role = models.CharField(
        max_length=10, choices=[("user", "user"), ("agent", "agent"), ("context", "context")]
    )
    text = models.TextField(blank=True)
    response_id = models.CharField(max_length=64, blank=True)
    interrupted = models.BooleanField(default=False)
    latency_first_ms = models.PositiveIntegerField(null=True, blank=True)
    latency_total_ms = models.PositiveIntegerField(null=True, blank=True)
    tokens_in = models.PositiveIntegerField(default=0)
    tokens_out = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    # Tool calls and results, knowledge sources, the matched skill and its confidence.
    details = models.JSONField(default=dict, blank=True)
    error = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["conversation", "index"]
        constraints = [models.UniqueConstraint(fields=["conversation", "index"], name="turn_index_unique")]

    def __str__(self) -> str:
        return f"{self.role}: {self.text[:40]}"
