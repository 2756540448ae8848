import uuid

from django.conf import settings
from django.db import models

from lifecycle.tenancy import TenantModel


class BackportStatus(models.TextChoices):
    OPEN = "open"
    APPLIED = "applied"
    DECLINED = "declined"


class Backport(TenantModel):
    """Hotfixes made in a later stage, proposed for the lineage's first-stage agent.

    The proposed contents are kept as they were when proposed (`items`), so what the
    first stage reviews is exactly what it applies.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    lineage = models.ForeignKey("agents.Lineage", on_delete=models.PROTECT, related_name="+")
    source_agent = models.ForeignKey("agents.Agent", on_delete=models.PROTECT, related_name="backports_out")
    target_agent = models.ForeignKey("agents.Agent", on_delete=models.PROTECT, related_name="backports_in")
    status = models.CharField(max_length=10, choices=BackportStatus.choices, default=BackportStatus.OPEN)
    note = models.TextField(blank=True, max_length=5000)
    # [{"uid", "kind", "name", "spec" (sealed as stored), "content_hash", "change"}]
    items = models.JSONField(default=list)
    proposed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True, max_length=5000)
    applied_version = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["org", "status", "-created_at"], name="backport_org_status")]

    def __str__(self) -> str:
        return f"back-port {self.status} ({len(self.items)} item(s))"


class StageKey(TenantModel):
    """An API key for live traffic into one stage (the gateway). Shown once, stored hashed."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    stage = models.ForeignKey("accounts.Stage", on_delete=models.PROTECT, related_name="keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16)
    key_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name})"


class StagePolicy(TenantModel):
    """The rules for changes INTO one stage (API.md "Stage policy").

    One row per stage, created on first write; a stage without a row has the default
    document ("no rule", except `releases.required` for the org's last stage). The
    document is validated by rollouts.policy before it is stored, so readers trust it.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    stage = models.OneToOneField("accounts.Stage", on_delete=models.CASCADE, related_name="policy")
    document = models.JSONField(default=dict)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"policy of {self.stage_id}"
