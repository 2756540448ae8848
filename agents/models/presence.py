from django.conf import settings
from django.db import models

from lifecycle.tenancy import TenantModel

from .agent import Agent

PRESENCE_TTL_SECONDS = 120


class Presence(TenantModel):
    """Who is editing which module of an agent; a heartbeat keeps it alive for 2 minutes."""

    id = models.BigAutoField(primary_key=True)
    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="presence")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    module = models.CharField(max_length=40)
    since = models.DateTimeField()
    last_seen = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["agent", "user", "module"], name="presence_one_per_module"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.module}"
