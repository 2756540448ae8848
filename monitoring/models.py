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


class MetricRollup(TenantModel):
    """One minute of one agent version's conversations from one source: counts, sums and
    a latency histogram (monitoring.histogram's fixed edges), so that any window and any
    coarser bucket is a sum of rows and percentiles come from the merged histogram.

    Filled by monitoring.rollup from turns past the org's watermark; never edited by hand.
    """

    id = models.BigAutoField(primary_key=True)
    stage = models.ForeignKey("accounts.Stage", on_delete=models.PROTECT, related_name="+")
    agent = models.ForeignKey("agents.Agent", on_delete=models.PROTECT, related_name="+")
    version = models.PositiveIntegerField()
    source = models.CharField(max_length=10)
    # The start of the minute (UTC) the turns were stored in.
    bucket = models.DateTimeField()
    conversations = models.PositiveIntegerField(default=0)
    turns = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    latency_count = models.PositiveIntegerField(default=0)
    latency_sum = models.BigIntegerField(default=0)
    histogram = models.JSONField(default=list)
    tokens = models.BigIntegerField(default=0)
    cost = models.DecimalField(max_digits=14, decimal_places=6, default=0)

    class Meta:
        ordering = ["bucket", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["agent", "version", "source", "bucket"], name="metric_rollup_one_per_minute"
            )
        ]
        indexes = [
            models.Index(fields=["org", "agent", "bucket"], name="metric_rollup_agent_time"),
            models.Index(fields=["org", "stage", "bucket"], name="metric_rollup_stage_time"),
        ]

    def __str__(self) -> str:
        return f"v{self.version} {self.source} {self.bucket:%Y-%m-%d %H:%M}"


class RollupWatermark(TenantModel):
    """Per org: the last turn id rolled up, and when each agent's thresholds were last read."""

    id = models.BigAutoField(primary_key=True)
    last_turn_id = models.BigIntegerField(default=0)
    # {agent id: ISO time}: the watcher reads an agent's thresholds when it is due.
    evaluated = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["org"], name="rollup_watermark_one_per_org")]

    def __str__(self) -> str:
        return f"rolled up to turn {self.last_turn_id}"
