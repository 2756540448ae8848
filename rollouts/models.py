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


class ReleaseStatus(models.TextChoices):
    PENDING = "pending"
    AWAITING_APPROVAL = "awaiting_approval"
    SMOKE_TESTING = "smoke_testing"
    PROGRESSING = "progressing"
    PAUSED = "paused"
    SUCCEEDED = "succeeded"
    ROLLED_BACK = "rolled_back"
    ABORTED = "aborted"


# A release in one of these still holds (or is about to hold) the agent's traffic.
ACTIVE_RELEASE_STATUSES = (
    ReleaseStatus.PENDING,
    ReleaseStatus.AWAITING_APPROVAL,
    ReleaseStatus.SMOKE_TESTING,
    ReleaseStatus.PROGRESSING,
    ReleaseStatus.PAUSED,
)


class ReleaseStrategy(models.TextChoices):
    DIRECT = "direct"
    CANARY = "canary"
    BLUE_GREEN = "blue_green"
    MANUAL = "manual"


class Release(TenantModel):
    """Moving an agent's live traffic from its stable version to a candidate version.

    A `direct` release is immediate: it is recorded already succeeded, at weight 100,
    and the candidate is the agent's live version. The record is the "who made what
    live, when, with which changelog" of API.md; rows are never deleted.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    agent = models.ForeignKey("agents.Agent", on_delete=models.PROTECT, related_name="releases")
    status = models.CharField(max_length=20, choices=ReleaseStatus.choices, default=ReleaseStatus.PENDING)
    strategy = models.CharField(
        max_length=12, choices=ReleaseStrategy.choices, default=ReleaseStrategy.DIRECT
    )
    # Version numbers of the agent: what was live before (None for its first), and what
    # this release makes live.
    stable_version = models.PositiveIntegerField(null=True, blank=True)
    candidate_version = models.PositiveIntegerField()
    # The candidate's share of traffic, 0-100, and the current step of `steps`.
    weight = models.PositiveSmallIntegerField(default=0)
    step = models.PositiveSmallIntegerField(default=0)
    steps = models.JSONField(default=list, blank=True)
    # Analysis verdicts, oldest first: [{"at","verdict","metrics","reason"}].
    analysis = models.JSONField(default=list, blank=True)
    changelog = models.TextField(max_length=10000)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Why it ended the way it did (or, for automatic releases, where it came from).
    reason = models.TextField(blank=True, max_length=2000)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["agent"],
                condition=models.Q(status__in=[s.value for s in ACTIVE_RELEASE_STATUSES]),
                name="release_one_active_per_agent",
            ),
        ]
        indexes = [models.Index(fields=["org", "agent", "-created_at"], name="release_org_agent_time")]

    def __str__(self) -> str:
        return f"{self.strategy} release v{self.candidate_version} ({self.status})"

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_RELEASE_STATUSES
