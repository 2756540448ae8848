"""The demo agent: Acme's support assistant, built by the demo developer (idempotent)."""

from django.db import transaction

from accounts.models import User
from lifecycle.access import access_for

from .models import Agent, Lineage
from .services.agents import agent_create
from .services.components import component_create
from .services.versions import version_save

DEMO_LINEAGE = "acme-support"

SETTINGS = {
    "instructions": "You are Acme Corp's support assistant. Answer from the knowledge base, be brief and kind.",
    "first_message": "Hi! I'm Acme's support assistant. Ask me about an order, returns or shipping.",
    "language": "en",
    "engine": "builtin",
    "fallback": "Sorry, I did not get that. I can help with orders, returns and shipping, or connect you to a person.",
}

COMPONENTS = [
    (
        "tool",
        "lookup_order",
        {
            "description": "Look up an order's status by its number.",
            "parameters": {
                "type": "object",
                "properties": {"order_id": {"type": "string"}},
                "required": ["order_id"],
            },
            "response": {"status": "shipped", "eta": "in 2 days", "carrier": "ParcelCo"},
        },
    ),
    (
        "skill",
        "greeting",
        {
            "utterances": ["hello", "hi there", "good morning"],
            "responses": ["Hello! How can I help you today?"],
        },
    ),
    (
        "skill",
        "order_status",
        {
            "utterances": ["where is my order", "track my order", "order status"],
            "patterns": [r"order\s*#?\s*(?P<order_id>\d{3,})"],
            "slots": {
                "order_id": {
                    "type": "string",
                    "required": True,
                    "prompt": "What is your order number?",
                    "pattern": r"(\d{3,})",
                }
            },
            "responses": [
                "Order {{order_id}} has {{tool.status}} and should arrive {{tool.eta}} with {{tool.carrier}}."
            ],
            "tool": "lookup_order",
        },
    ),
    (
        "skill",
        "human_handoff",
        {
            "utterances": ["talk to a person", "human please", "speak to an agent"],
            "responses": ["I'll connect you with a colleague. You can also write to {{SUPPORT_EMAIL}}."],
        },
    ),
    (
        "knowledge",
        "returns",
        {
            "title": "Returns policy",
            "body": "You can return any item within 30 days of delivery for a full refund. Items must be unused and in "
            "their original packaging. Start a return from your account page; the return label is free.",
        },
    ),
    (
        "knowledge",
        "shipping",
        {
            "title": "Shipping times",
            "body": "Standard shipping takes 3 to 5 business days. Express shipping takes 1 to 2 business days and costs "
            "$9.99. Orders placed before 2 pm ship the same day.",
        },
    ),
    (
        "knowledge",
        "warranty",
        {
            "title": "Warranty",
            "body": "Every Acme product has a two-year warranty covering manufacturing defects. Keep your receipt.",
        },
    ),
    ("variable", "SUPPORT_EMAIL", {"value": "support@acme.test", "secret": False}),
    ("variable", "CRM_API_KEY", {"value": "dev-crm-key-not-for-production", "secret": True}),
    (
        "live_agent_message",
        "working_hours",
        {"type": "working_hours", "text": "Our team is here 9am to 5pm, Monday to Friday."},
    ),
    ("persona", "tone", {"description": "Friendly, brief, never pushy."}),
]


def seed_demo_agent(org) -> Agent | None:
    """Create the demo agent once; later runs leave it (and any edits) alone."""
    if Lineage.objects.for_org(org).filter(slug=DEMO_LINEAGE).exists():
        return None
    developer = User.objects.get(email="developer@acme.test")
    access = access_for(developer, org)
    with transaction.atomic():
        agent = agent_create(
            access=access,
            name="Acme Support",
            description="Answers customers about orders, returns and shipping.",
            settings=SETTINGS,
        )
        for kind, name, spec in COMPONENTS:
            component_create(access=access, agent=agent, kind=kind, name=name, spec=spec)
        version_save(
            access=access, agent=agent, changelog="Skills, knowledge, an order-lookup tool and variables."
        )
    return agent
