from __future__ import annotations

from django.db import transaction

from lifecycle.access import Access
from lifecycle.audit import audit_record
from lifecycle.errors import Forbidden, Invalid

from ..models import Agent, Conversation, TestResult


def test_result_record(*, access: Access, agent: Agent, conversation_id=None, **fields) -> TestResult:
    """A tester's verdict, tied to the agent's stage and version (the conversation's, if given)."""
    if not access.can("view", agent):
        raise Forbidden()
    conversation = None
    if conversation_id is not None:
        # An id from the body is checked against this org and agent: anything else is missing.
        conversation = (
            Conversation.objects.for_org(access.org).filter(pk=conversation_id, agent=agent).first()
        )
        if conversation is None:
            raise Invalid(fields={"conversation": ["No conversation with this id for this agent."]})
    with transaction.atomic():
        result = TestResult.objects.create(
            org=access.org,
            agent=agent,
            stage_id=agent.stage_id,
            version=conversation.version if conversation else agent.version,
            draft=conversation.draft if conversation else agent.has_unsaved_changes,
            conversation=conversation,
            created_by=access.user,
            **fields,
        )
        if conversation is not None:  # the tester's rating is the conversation's rating
            Conversation.objects.for_org(access.org).filter(pk=conversation.pk).update(rating=result.rating)
        audit_record(
            org=access.org,
            actor=access.user,
            action="test_result.record",
            target=agent,
            changes={"status": result.status, "rating": result.rating, "version": result.version},
        )
    return result


test_result_record.__test__ = False  # not a pytest function
