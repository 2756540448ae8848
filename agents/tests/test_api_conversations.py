"""Conversations are records: readable through the agent, by source, with their turns."""

from agents.api.views import ConversationViewSet
from agents.models import Conversation
from agents.services.agents import agent_archive
from agents.services.conversations import conversation_rate, conversation_record, conversation_start
from agents.tests.helpers import AgentChildTests
from tests.api_mixin import assert_envelope
from tests.factories import make_agent, owner_access

BASE = "/api/v1/orgs/{org}/agents/{agent}/"


def talk(agent, source="console", rating=None):
    conversation = conversation_start(agent=agent, version=1, draft=source == "console", source=source)
    conversation_record(
        conversation=conversation,
        turns=[
            {"index": 0, "role": "user", "text": "Where is order 4242?"},
            {
                "index": 1,
                "text": "Order 4242 has shipped.",
                "latency_first_ms": 3,
                "latency_total_ms": 9,
                "tokens_in": 5,
                "tokens_out": 4,
                "details": {
                    "skill": "order_status",
                    "tools": [{"type": "tool_call", "tool_name": "lookup_order"}],
                },
            },
        ],
    )
    if rating:
        conversation_rate(conversation=conversation, rating=rating)
    return conversation


class TestConversationsTenancy(AgentChildTests):
    views = (ConversationViewSet,)
    list_url = BASE + "conversations/"
    detail_url = BASE + "conversations/{id}/"
    reader = "developer"

    def make_object(self, world, org):
        return str(talk(self.agent_in(world, org)).pk)

    def count(self, world):
        return Conversation.objects.for_org(world.acme).count()


def test_a_conversation_reads_back_with_its_turns_latency_usage_and_rating(world):
    agent = make_agent(world.acme)
    live = talk(agent, source="live", rating=4)
    talk(agent, source="console")
    client = world.client("developer")
    url = BASE.format(org="acme", agent=agent.pk) + "conversations/"

    listed = client.get(url).json()["results"]
    assert sorted(c["source"] for c in listed) == ["console", "live"]
    only_live = client.get(url + "?source=live").json()["results"]
    assert [c["id"] for c in only_live] == [str(live.pk)]
    assert only_live[0]["rating"] == 4 and only_live[0]["turn_count"] == 2 and only_live[0]["tokens_out"] == 4

    detail = client.get(url + f"{live.pk}/")
    assert detail.status_code == 200 and detail.headers["ETag"]
    user, reply = detail.json()["turns"]
    assert (user["role"], user["text"]) == ("user", "Where is order 4242?")
    assert (reply["latency_first_ms"], reply["latency_total_ms"]) == (3, 9)
    assert reply["details"]["tools"][0]["tool_name"] == "lookup_order"

    assert_envelope(client.get(url + "?source=carrier-pigeon"), 400, "invalid")
    assert_envelope(client.post(url, {}, format="json"), 405)


def test_an_archived_agents_conversations_stay_readable(world):
    agent = make_agent(world.acme)
    conversation = talk(agent, source="live")
    agent_archive(access=owner_access(world.acme), agent=agent)
    response = world.client("developer").get(
        BASE.format(org="acme", agent=agent.pk) + f"conversations/{conversation.pk}/"
    )
    assert response.status_code == 200 and len(response.json()["turns"]) == 2
