import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from lifecycle.tenancy import TenantModel

from .agent import Agent


class TestResultStatus(models.TextChoices):
    PASSED = "passed"
    FAILED = "failed"
    NEEDS_IMPROVEMENT = "needs_improvement"


class TestResult(TenantModel):
    """A tester's verdict on a conversation with an agent, tied to the version tried."""

    __test__ = False  # not a pytest class

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="test_results")
    stage = models.ForeignKey("accounts.Stage", on_delete=models.PROTECT, related_name="+")
    version = models.PositiveIntegerField()
    draft = models.BooleanField(default=False, help_text="Run against unsaved changes.")
    duration = models.FloatField(help_text="Seconds.")
    transcript = models.JSONField(default=list)
    rating = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(5)])
    notes = models.TextField(blank=True, max_length=10000)
    status = models.CharField(max_length=20, choices=TestResultStatus.choices)
    conversation = models.ForeignKey(
        "agents.Conversation", on_delete=models.PROTECT, null=True, blank=True, related_name="test_results"
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.status} ({self.rating}/5)"
