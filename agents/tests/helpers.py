from tests.api_mixin import OrgScopedEndpointTests
from tests.factories import make_agent


class AgentChildTests(OrgScopedEndpointTests):
    """The cross-tenant mixin for resources under /agents/{agent}/: one agent per org."""

    def agent_in(self, world, org):
        cache = world.__dict__.setdefault("_agents", {})
        if org.pk not in cache:
            cache[org.pk] = make_agent(org)
        return cache[org.pk]

    def path_kwargs(self, world, org):
        return {"agent": self.agent_in(world, org).pk}
