"""django-guardian's direct foreign-key permission models for agents.

They carry `org`, so grants sit inside the tenant filter like every other row.
"""

from django.db import models
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from lifecycle.tenancy import TenantManager, TenantModel

from .agent import Agent


class GrantManager(TenantManager):
    def is_generic(self) -> bool:
        """guardian asks this of a permission model's manager; ours are direct FK models."""
        return False


class AgentUserObjectPermission(UserObjectPermissionBase, TenantModel):
    content_object = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="user_grants")

    objects = GrantManager()

    class Meta(UserObjectPermissionBase.Meta):
        abstract = False


class AgentGroupObjectPermission(GroupObjectPermissionBase, TenantModel):
    content_object = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="group_grants")

    objects = GrantManager()

    class Meta(GroupObjectPermissionBase.Meta):
        abstract = False
