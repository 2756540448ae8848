"""A refund agent whose `issue_refund` tool waits for a person in its stage."""

from accounts.models import Stage
from agents.runtime.compile import CACHE
from agents.services.versions import version_save
from rollouts.policy import stage_policy_update
from rollouts.services.keys import stage_key_create
from tests.factories import add_component, make_agent, owner_access, skill

__test__ = False
SECRET = "sk-refund-canary-0123456789"
REFUND_PATTERN = r"refund order (?P<order_id>\d+)(?: note (?P<note>\S+))?"


def refund_agent(
    org, webhook_url: str, *, stage: str = "development", timeout: str = "15m", tools=("issue_refund",)
):
    """The agent (saved, so live traffic serves it), its stage's policy, and a stage key."""
    CACHE.clear()
    access = owner_access(org)
    agent = make_agent(org, "Refunds")
    add_component(agent, "variable", "REFUND_TOKEN", {"value": SECRET, "secret": True})
    add_component(
        agent,
        "tool",
        "issue_refund",
        {
            "description": "Refund an order.",
            "parameters": {
                "type": "object",
                "properties": {"order_id": {"type": "string"}, "note": {"type": "string"}},
            },
            "webhook_url": webhook_url + "/refunds",
            "headers": {"Authorization": "Bearer {{REFUND_TOKEN}}"},
            "retries": 0,
        },
    )
    add_component(
        agent,
        "skill",
        "refund",
        skill(
            ["refund my order"],
            ["Refund {{tool.refund_id}} issued for order {{order_id}}."],
            patterns=[REFUND_PATTERN],
            tool="issue_refund",
        ),
    )
    version_save(access=access, agent=agent, changelog="refunds")
    stage_obj = Stage.objects.for_org(org).get(slug=stage)
    stage_policy_update(
        access=access,
        stage=stage_obj,
        document={"action_approvals": {"tools": list(tools), "timeout": timeout}},
    )
    _, key = stage_key_create(access=access, stage=stage_obj, name="widget")
    return agent, key


def refund_server_handler(recorder, request):
    return 200, {"refund_id": f"R-{request['body']['parameters']['order_id']}"}, 0
