import uuid

from django.conf import settings
from django.db import models

from lifecycle.tenancy import TenantModel

from .agent import Agent
from .component import Manifest


class VersionReason(models.TextChoices):
    CREATE = "create"
    SAVE = "save"
    PROMOTE = "promote"
    PULL = "pull"
    BACKPORT = "backport"
    RESTORE = "restore"
    IMPORT = "import"
    RELEASE = "release"
    ROLLBACK = "rollback"


class AgentVersion(TenantModel):
    """An immutable snapshot of every component of an agent."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    changelog = models.TextField(blank=True, max_length=10000)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )
    reason = models.CharField(max_length=16, choices=VersionReason.choices)
    # The version this one came from: the source stage's version on promote and pull,
    # the restored version on restore.
    source_version = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="derived"
    )
    manifest = models.ForeignKey(Manifest, on_delete=models.PROTECT, related_name="versions")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(fields=["agent", "number"], name="version_number_unique_per_agent")
        ]

    def __str__(self) -> str:
        return f"{self.agent_id} v{self.number}"
