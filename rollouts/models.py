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
    # Analysis verdicts are ReleaseVerdict rows (`verdicts`), every one kept.
    changelog = models.TextField(max_length=10000)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Why it ended the way it did (or, for automatic releases, where it came from).
    reason = models.TextField(blank=True, max_length=2000)
    # Progressive strategies (canary, blue_green, manual): the analysis thresholds and
    # interval, keep_warm and the smoke test, as validated at creation.
    config = models.JSONField(default=dict, blank=True)
    step_started_at = models.DateTimeField(null=True, blank=True)
    # When the beat's sweep next analyses it (only while progressing).
    next_analysis_at = models.DateTimeField(null=True, blank=True)
    # After success: the stable version stays restorable by one rollback until then.
    warm_until = models.DateTimeField(null=True, blank=True)
    # A rollback for a safety violation moves the candidate's open conversations too.
    safety_rollback = models.BooleanField(default=False)
    # The smoke test (blue_green) or the run that waited for approval.
    operation = models.ForeignKey(
        "lifecycle.Operation", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["agent"],
                condition=models.Q(status__in=[s.value for s in ACTIVE_RELEASE_STATUSES]),
                name="release_one_active_per_agent",
            ),
        ]
        indexes = [
            models.Index(fields=["org", "agent", "-created_at"], name="release_org_agent_time"),
            models.Index(
                fields=["next_analysis_at"],
                condition=models.Q(status="progressing"),
                name="release_due_for_analysis",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.strategy} release v{self.candidate_version} ({self.status})"

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_RELEASE_STATUSES


class Verdict(models.TextChoices):
    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"
    ERROR = "error"


class ReleaseVerdict(TenantModel):
    """One analysis of a progressing release: its verdict, numbers, tests and p-values."""

    id = models.BigAutoField(primary_key=True)
    release = models.ForeignKey(Release, on_delete=models.PROTECT, related_name="verdicts")
    at = models.DateTimeField()
    step = models.PositiveSmallIntegerField()
    weight = models.PositiveSmallIntegerField()
    verdict = models.CharField(max_length=12, choices=Verdict.choices)
    # {"conversations": {...}, "error_rate": {"result","stable","candidate","test","p_value",...}, ...}
    metrics = models.JSONField(default=dict, blank=True)
    reason = models.TextField(blank=True, max_length=2000)
    # What the verdict led to: advanced, rolled_back, paused, or "" (held).
    action = models.CharField(max_length=20, blank=True)

    class Meta:
        ordering = ["release", "at", "id"]
        indexes = [models.Index(fields=["org", "release", "at"], name="verdict_release_time")]

    def __str__(self) -> str:
        return f"{self.verdict} at {self.weight} %"


# --- evaluation: suites, runs, red team, soak (issue 9) --------------------------------
class EvaluationStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class TestSuite(TenantModel):
    """Regression cases of one lineage: they follow the agent through the stages."""

    __test__ = False  # not a pytest class

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    lineage = models.ForeignKey("agents.Lineage", on_delete=models.PROTECT, related_name="suites")
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True, max_length=5000)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    archived_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["lineage", "name"],
                condition=models.Q(archived_at__isnull=True),
                name="suite_name_unique_per_lineage",
            )
        ]

    def __str__(self) -> str:
        return self.name


class TestCase(TenantModel):
    """User turns with expectations: {"turns": [{"user": "…", "expect": [{"type", …}]}]}."""

    __test__ = False

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    suite = models.ForeignKey(TestSuite, on_delete=models.PROTECT, related_name="cases")
    name = models.CharField(max_length=200)
    variables = models.JSONField(default=dict, blank=True)
    turns = models.JSONField(default=list)
    position = models.PositiveIntegerField(default=0)
    # The conversation a case was made from (one click from console, test result or live).
    source_conversation = models.ForeignKey(
        "agents.Conversation", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position", "created_at", "id"]
        constraints = [models.UniqueConstraint(fields=["suite", "name"], name="case_name_unique_per_suite")]

    def __str__(self) -> str:
        return self.name


class EvaluationRun(TenantModel):
    """What the three kinds of run share: the agent and version run, status, timing."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    agent = models.ForeignKey("agents.Agent", on_delete=models.PROTECT, related_name="+")
    # The agent's stage when it ran: runs are evidence about a stage's agent.
    stage = models.ForeignKey("accounts.Stage", on_delete=models.PROTECT, related_name="+")
    # The saved version run; None for the working copy ("draft").
    version = models.PositiveIntegerField(null=True, blank=True)
    status = models.CharField(
        max_length=10, choices=EvaluationStatus.choices, default=EvaluationStatus.QUEUED
    )
    operation = models.ForeignKey(
        "lifecycle.Operation", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
        ordering = ["-created_at"]


class TestRun(EvaluationRun):
    """A suite run against one version: per-case results, accuracy, scores. Immutable once finished."""

    __test__ = False

    suite = models.ForeignKey(TestSuite, on_delete=models.PROTECT, related_name="runs")
    accuracy = models.FloatField(null=True, blank=True)
    passed = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    # [{"case","name","passed","reasons":[{"turn","type","expected","got"}],"conversation",
    #   "latency_ms","scores":{...}}]
    cases = models.JSONField(default=list, blank=True)
    # Aggregates: {"relevance","groundedness","intent_resolution","tool_call_accuracy",
    #   "latency_ms":{"p50","p95"}, "judge": {...}}
    scores = models.JSONField(default=dict, blank=True)
    # Defect rate per safety category: {"violence": 0.0, ...}
    safety = models.JSONField(default=dict, blank=True)

    class Meta(EvaluationRun.Meta):
        indexes = [
            models.Index(fields=["org", "suite", "agent", "-created_at"], name="testrun_suite_agent_time")
        ]


class RedTeamRun(EvaluationRun):
    """Attacks per risk category x strategy, and which of them leaked a canary."""

    categories = models.JSONField(default=list)
    strategies = models.JSONField(default=list)
    attacks = models.PositiveIntegerField(default=0)
    successes = models.PositiveIntegerField(default=0)
    attack_success_rate = models.FloatField(null=True, blank=True)
    # [{"category","strategy","attacks","successes","asr"}]
    table = models.JSONField(default=list, blank=True)
    # [{"category","strategy","prompt","response","evidence"}], secrets masked
    findings = models.JSONField(default=list, blank=True)

    class Meta(EvaluationRun.Meta):
        indexes = [models.Index(fields=["org", "agent", "-created_at"], name="redteam_agent_time")]


class SoakTest(EvaluationRun):
    """N executions or a duration against an agent: latency percentiles, errors, drift."""

    # {"executions","duration","concurrency","suite"}
    params = models.JSONField(default=dict, blank=True)
    executions = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    error_rate = models.FloatField(null=True, blank=True)
    latency_ms = models.JSONField(default=dict, blank=True)  # {"p50","p95","p99"}
    throughput_per_s = models.FloatField(null=True, blank=True)
    drift = models.JSONField(default=dict, blank=True)  # {"p95_first_tenth_ms","p95_last_tenth_ms"}

    class Meta(EvaluationRun.Meta):
        indexes = [models.Index(fields=["org", "agent", "-created_at"], name="soak_agent_time")]


class JudgeSettings(TenantModel):
    """An org's optional LLM judge: an OpenAI-compatible endpoint, model and key (encrypted)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    base_url = models.URLField(max_length=500)
    model = models.CharField(max_length=200)
    # Fernet ciphertext (lifecycle.crypto); write-only over the API.
    key_encrypted = models.TextField(blank=True)
    enabled = models.BooleanField(default=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["org"], name="judge_one_per_org")]

    def __str__(self) -> str:
        return f"judge {self.model}"


class LiveSafety(TenantModel):
    """Safety defects found in a sample of one version's live answers (rollouts.services.live_safety).

    Counts, not rates, so that sweeps add to them with F() and the rate is always
    defects / scored over everything sampled so far.
    """

    id = models.BigAutoField(primary_key=True)
    agent = models.ForeignKey("agents.Agent", on_delete=models.PROTECT, related_name="+")
    stage = models.ForeignKey("accounts.Stage", on_delete=models.PROTECT, related_name="+")
    version = models.PositiveIntegerField()
    scored = models.PositiveIntegerField(default=0)
    violence = models.PositiveIntegerField(default=0)
    sexual = models.PositiveIntegerField(default=0)
    self_harm = models.PositiveIntegerField(default=0)
    hate = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-version"]
        constraints = [
            models.UniqueConstraint(fields=["agent", "version"], name="live_safety_one_per_version")
        ]

    def __str__(self) -> str:
        return f"live safety v{self.version} ({self.scored} scored)"

    def rates(self) -> dict[str, float]:
        from .evaluators.safety import CATEGORIES

        if not self.scored:
            return dict.fromkeys(CATEGORIES, 0.0)
        return {category: round(getattr(self, category) / self.scored, 4) for category in CATEGORIES}
