import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from lifecycle.tenancy import TenantModel


class Lineage(TenantModel):
    """What an agent's clones in every stage share: a stable id and slug."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    slug = models.SlugField(max_length=60)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["org", "slug"], name="lineage_slug_unique_per_org")]

    def __str__(self) -> str:
        return self.slug


class Agent(TenantModel):
    """One agent in one stage. Archived, never deleted: its history stays readable."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    lineage = models.ForeignKey(Lineage, on_delete=models.PROTECT, related_name="agents")
    stage = models.ForeignKey("accounts.Stage", on_delete=models.PROTECT, related_name="agents")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    source_agent = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="clones"
    )
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True, max_length=2000)
    # The number of the latest AgentVersion; the working copy may have moved on since.
    version = models.PositiveIntegerField(default=0)
    # True when components changed after the latest version was saved.
    has_unsaved_changes = models.BooleanField(default=False)
    # The saved version serving the stage's live traffic (the gateway), or none. Only the
    # release service (rollouts) moves it: saving a version never does by itself.
    live_version = models.PositiveIntegerField(null=True, blank=True)
    archived_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["lineage", "stage"],
                condition=Q(archived_at__isnull=True),
                name="agent_one_active_per_lineage_stage",
            ),
        ]
        indexes = [models.Index(fields=["org", "stage", "-created_at"], name="agent_org_stage_time")]

    def __str__(self) -> str:
        return self.name

    @property
    def archived(self) -> bool:
        return self.archived_at is not None
