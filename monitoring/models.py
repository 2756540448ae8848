import uuid

from django.db import models
from django.db.models import Q

from lifecycle.tenancy import TenantModel


class AlertLevel(models.TextChoices):
    WARNING = "warning"
    CRITICAL = "critical"


class Alert(TenantModel):
    """A condition on a stage (or one agent in it) crossing a threshold.

    Opens once, is updated while the condition lasts and resolves once: at most one open
    alert per (stage, agent, metric), which the partial unique constraints below enforce
    (two, because NULL agents never collide in a plain unique index). `metric` is open
    text so later metrics (latency, error rate) add no migration.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    stage = models.ForeignKey("accounts.Stage", on_delete=models.PROTECT, related_name="+")
    agent = models.ForeignKey(
        "agents.Agent", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    version = models.PositiveIntegerField(null=True, blank=True)
    metric = models.CharField(max_length=50)
    level = models.CharField(max_length=10, choices=AlertLevel.choices)
    value = models.DecimalField(max_digits=20, decimal_places=6)
    threshold = models.DecimalField(max_digits=20, decimal_places=6)
    # What the metric adds (spend: the month, the budget, the ratio).
    details = models.JSONField(default=dict, blank=True)
    opened_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-opened_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["org", "stage", "agent", "metric"],
                condition=Q(resolved_at__isnull=True, agent__isnull=False),
                name="alert_one_open_per_agent",
            ),
            models.UniqueConstraint(
                fields=["org", "stage", "metric"],
                condition=Q(resolved_at__isnull=True, agent__isnull=True),
                name="alert_one_open_per_stage",
            ),
        ]
        indexes = [models.Index(fields=["org", "resolved_at", "-opened_at"], name="alert_org_status")]

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None

    def __str__(self) -> str:
        return f"{self.level} {self.metric} alert"
