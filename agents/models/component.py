import uuid

from django.db import models

from lifecycle.tenancy import TenantModel

from ..components import KIND_CHOICES
from .agent import Agent


class Component(TenantModel):
    """A piece of an agent's configuration. Its uid is the same in every stage's clone."""

    id = models.BigAutoField(primary_key=True)
    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="components")
    uid = models.UUIDField(default=uuid.uuid4)
    kind = models.CharField(max_length=32, choices=KIND_CHOICES)
    name = models.CharField(max_length=200)
    # Secret values are stored sealed: {"$secret": "<Fernet token>"}.
    spec = models.JSONField(default=dict)
    # HMAC of the canonical {kind, name, spec} with secrets in the clear: any change shows.
    content_hash = models.CharField(max_length=64)
    # The source's content_hash when this row was last promoted or pulled.
    synced_hash = models.CharField(max_length=64, blank=True, default="")
    # A variable carried over by promotion that still holds the previous stage's value.
    needs_review = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["kind", "name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["agent", "uid"], name="component_uid_unique_per_agent"),
            # One name per kind in an agent: reviewers, references and pulls tell
            # components apart by it (two skills called "greet" could not be reviewed).
            models.UniqueConstraint(fields=["agent", "kind", "name"], name="component_name_unique_per_kind"),
        ]
        indexes = [models.Index(fields=["agent", "kind"], name="component_agent_kind")]

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"


class Tombstone(TenantModel):
    """A synced component deleted in this stage, so a pull does not offer it again."""

    id = models.BigAutoField(primary_key=True)
    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="tombstones")
    uid = models.UUIDField()
    kind = models.CharField(max_length=32, choices=KIND_CHOICES)
    name = models.CharField(max_length=200)
    synced_hash = models.CharField(max_length=64, blank=True, default="")
    deleted_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["agent", "uid"], name="tombstone_uid_unique_per_agent")
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.name} (deleted)"


class ComponentContent(TenantModel):
    """One row per distinct component content in an org (content-addressed).

    Versions point at contents by hash, so a version of a large agent writes rows only
    for what changed, and a promotion's clone writes none at all.
    """

    id = models.BigAutoField(primary_key=True)
    hash = models.CharField(max_length=64)
    kind = models.CharField(max_length=32, choices=KIND_CHOICES)
    name = models.CharField(max_length=200)
    spec = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["org", "hash"], name="content_hash_unique_per_org")]

    def __str__(self) -> str:
        return f"{self.kind}:{self.name} [{self.hash[:10]}]"


class Manifest(TenantModel):
    """The set of (uid, content hash) a version holds; shared by identical versions."""

    id = models.BigAutoField(primary_key=True)
    digest = models.CharField(max_length=64)
    # [[uid, hash], ...] sorted by uid.
    entries = models.JSONField(default=list)
    size = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["org", "digest"], name="manifest_digest_unique_per_org")
        ]

    def __str__(self) -> str:
        return f"manifest {self.digest[:10]} ({self.size})"
