"""The agent domain's models, one module per idea."""

from .action_approval import ActionApproval, ActionApprovalStatus, ConversationEvent
from .agent import Agent, Lineage
from .component import Component, ComponentContent, Manifest, Tombstone
from .conversation import Conversation, ConversationSource, Turn
from .grant import AgentGroupObjectPermission, AgentUserObjectPermission
from .presence import Presence
from .testresult import TestResult
from .version import AgentVersion, VersionReason

__all__ = [
    "ActionApproval",
    "ActionApprovalStatus",
    "Agent",
    "AgentGroupObjectPermission",
    "AgentUserObjectPermission",
    "AgentVersion",
    "Component",
    "ComponentContent",
    "Conversation",
    "ConversationEvent",
    "ConversationSource",
    "Lineage",
    "Manifest",
    "Presence",
    "TestResult",
    "Tombstone",
    "Turn",
    "VersionReason",
]
