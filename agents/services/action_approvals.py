"""Action approvals: a tool call that waits for a person, its decision, its timeout, and
for live conversations the rest of the turn, produced after the decision.

A console waits with its socket open and polls the row (the runtime's ConsoleGate). A
live conversation's message answers up to `tool_approval_requested`; the decision (or
the sweep, at the timeout) starts `action_approval_continue` on commit, which runs the
turn again with the decisions known and stores what follows as numbered events for the
gateway's events endpoint.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from lifecycle.access import Access
from lifecycle.audit import audit_record
from lifecycle.errors import Conflict, Forbidden, Invalid

from ..hooks import action_approval_policy
from ..models import ActionApproval, ActionApprovalStatus, Conversation, ConversationEvent, Turn
from ..models.conversation import ConversationSource
from ..runtime.approvals import Known, LiveGate, Opened
from .conversations import conversation_history, conversations_record

logger = logging.getLogger(__name__)
PENDING = ActionApprovalStatus.PENDING
# The key in a live conversation's state while a call waits: its next message is refused
# until the turn is over (read with the conversation, so a message costs no query more).
AWAITING = "_awaiting_approval"
MAX_COMMENT = 2000


def _audit(approval: ActionApproval, action: str, actor=None, **changes) -> None:
    audit_record(
        org=approval.org,
        actor=actor,
        action=action,
        target=approval,
        changes={
            "tool": approval.tool_name,
            "stage": str(approval.stage_id),
            "conversation": str(approval.conversation_id),
            **changes,
        },
    )


def action_approval_open(
    *,
    conversation: Conversation,
    turn: int,
    position: int,
    tool_call_id: str,
    tool_name: str,
    parameters: dict,
    timeout_seconds: int,
    user_text: str = "",
    approval_id=None,
    request_seq: int = 0,
) -> ActionApproval:
    """A call waits for a person (`parameters` already masked)."""
    with transaction.atomic():
        approval = ActionApproval.objects.create(
            **({"id": approval_id} if approval_id else {}),
            org_id=conversation.org_id,
            conversation=conversation,
            agent_id=conversation.agent_id,
            stage_id=conversation.stage_id,
            version=conversation.version,
            turn=turn,
            position=position,
            tool_call_id=tool_call_id[:100],
            tool_name=tool_name[:100],
            parameters=parameters,
            user_text=user_text[:10_000],
            expires_at=timezone.now() + timedelta(seconds=timeout_seconds),
            request_seq=request_seq,
        )
        _audit(approval, "action_approval.requested", version=conversation.version)
    return approval


def conversation_wait(
    *,
    conversation: Conversation,
    turns: list[dict],
    state: dict,
    turn: int,
    opened: list[Opened],
    seqs: dict[str, int],
    events: list[dict] = (),
    after: int = 0,
) -> None:
    """A live turn stopped at a call that waits: the user's message, the state the turn
    began with (it is run again from there), the approval, and (when it stopped again
    after a decision) the events that came before, all in one transaction."""
    timeout = action_approval_policy(org_id=conversation.org_id, stage_id=conversation.stage_id)[
        "timeout_seconds"
    ]
    with transaction.atomic():
        conversations_record([(conversation, turns, {**state, AWAITING: opened[0].id})])
        _store_events(conversation, turn, events, after)
        for call in opened:
            action_approval_open(
                conversation=conversation,
                turn=turn,
                position=call.position,
                tool_call_id=call.tool_call_id,
                tool_name=call.tool_name,
                parameters=call.parameters,
                user_text=call.user_text,
                timeout_seconds=timeout,
                approval_id=call.id,
                request_seq=seqs.get(call.id, 0),
            )


def _store_events(conversation: Conversation, turn: int, events, after: int) -> None:
    ConversationEvent.objects.bulk_create(
        ConversationEvent(
            org_id=conversation.org_id,
            conversation=conversation,
            turn=turn,
            seq=after + n,
            frame={**frame, "seq": after + n},
        )
        for n, frame in enumerate(events, start=1)
    )


# --- deciding ---------------------------------------------------------------------------
def action_approval_decide(
    *, access: Access, approval: ActionApproval, decision: str, comment: str = ""
) -> ActionApproval:
    """Approve or reject a waiting call: an editor or manager of its stage, once."""
    if decision not in (ActionApprovalStatus.APPROVED, ActionApprovalStatus.REJECTED):
        raise Invalid(fields={"decision": ["approved or rejected."]})
    if not isinstance(comment, str) or len(comment) > MAX_COMMENT:
        raise Invalid(fields={"comment": [f"At most {MAX_COMMENT} characters."]})
    if not access.has_stage_role(approval.stage_id, "editor"):
        raise Forbidden("Only editors and managers of the stage decide its action approvals.")
    expired = decided = False
    with transaction.atomic():
        locked = (
            ActionApproval.objects.for_org(access.org)
            .select_for_update(of=("self",))
            .select_related("conversation")
            .get(pk=approval.pk)
        )
        if locked.status == PENDING and locked.expires_at <= timezone.now():
            _expire(locked)
            expired = True
        elif locked.status == PENDING:
            locked.status = decision
            locked.decided_by = access.user
            locked.decided_at = timezone.now()
            locked.comment = comment
            locked.save(update_fields=["status", "decided_by", "decided_at", "comment"])
            _audit(locked, f"action_approval.{decision}", actor=access.user, comment=comment[:200])
            _continue_on_commit(locked)
            decided = True
    if expired:
        raise Conflict("This action approval has expired.", details={"status": "expired"})
    if not decided:
        raise Conflict(f"This action approval is already {locked.status}.", details={"status": locked.status})
    return locked


def _expire(locked: ActionApproval) -> None:
    locked.status = ActionApprovalStatus.EXPIRED
    locked.decided_at = timezone.now()
    locked.save(update_fields=["status", "decided_at"])
    _audit(locked, "action_approval.expired")
    _continue_on_commit(locked)


def _continue_on_commit(approval: ActionApproval) -> None:
    if approval.conversation.source == ConversationSource.LIVE:
        from ..tasks import continue_action_approval

        continue_action_approval.delay_on_commit(str(approval.org_id), str(approval.pk))


def action_approval_expire(*, org_id, approval_id, due_only: bool = True) -> str:
    """Expire a waiting call (at its timeout; `due_only=False`: the console's own clock
    ran out). Its status afterwards: a decision that came first stands."""
    with transaction.atomic():
        locked = (
            ActionApproval.objects.for_org(org_id)
            .select_for_update(of=("self",))
            .select_related("conversation")
            .filter(pk=approval_id)
            .first()
        )
        if locked is None:
            return ActionApprovalStatus.EXPIRED
        if locked.status == PENDING and (not due_only or locked.expires_at <= timezone.now()):
            _expire(locked)
        return locked.status


def action_approval_status(*, org_id, approval_id) -> str:
    found = ActionApproval.objects.for_org(org_id).filter(pk=approval_id).values_list("status", flat=True)
    return next(iter(found), ActionApprovalStatus.EXPIRED)


def action_approvals_sweep() -> int:
    """Expire every waiting call past its timeout, in every org (the periodic task), and
    start again any live turn whose decision was left without its continuation."""
    now = timezone.now()
    # Across orgs on purpose: each row is then handled inside its own org.
    due = list(
        ActionApproval.objects.dangerously_unscoped()
        .filter(status=PENDING, expires_at__lte=now)
        .values_list("org_id", "pk")[:500]
    )
    for org_id, pk in due:
        action_approval_expire(org_id=org_id, approval_id=pk)
    stalled = list(
        ActionApproval.objects.dangerously_unscoped()
        .exclude(status=PENDING)
        .filter(
            continued_at__isnull=True,
            conversation__source=ConversationSource.LIVE,
            decided_at__lte=now - timedelta(minutes=1),
        )
        .values_list("org_id", "pk")[:500]
    )
    from ..tasks import continue_action_approval

    for org_id, pk in stalled:
        continue_action_approval.delay(str(org_id), str(pk))
    return len(due)


# --- a live turn, after the decision ------------------------------------------------------
def _run(coroutine):
    """Run the engine on an event loop of this thread's own (a task or a sync view)."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coroutine)
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def action_approval_continue(*, org_id, approval_id) -> None:
    """The rest of a live turn once its waiting call is decided: run again with every
    decision of the turn known, what follows the call stored as events, the agent's turn
    recorded (or the next waiting call opened). Idempotent: a second run writes nothing."""
    from ..runtime.compile import compile_saved
    from ..runtime.engine import engine_for
    from ..runtime.session import Session

    approval = (
        ActionApproval.objects.for_org(org_id).select_related("conversation").filter(pk=approval_id).first()
    )
    if approval is None or approval.status == PENDING or approval.continued_at is not None:
        return
    conversation = approval.conversation
    if conversation.source != ConversationSource.LIVE:
        return
    chain = list(
        ActionApproval.objects.for_org(org_id)
        .filter(conversation=conversation, turn=approval.turn)
        .order_by("position")
    )
    policy = action_approval_policy(org_id=org_id, stage_id=conversation.stage_id)
    gate = LiveGate(
        tools=set(policy["tools"]) | {a.tool_name for a in chain},
        known={a.position: Known(str(a.pk), a.status, a.tool_name, a.parameters, a.outcome) for a in chain},
    )
    text = (
        Turn.objects.for_org(org_id)
        .filter(conversation=conversation, index=approval.turn - 1, role="user")
        .values_list("text", flat=True)
        .first()
    )
    if text is None:
        logger.warning("action approval %s: its user turn is gone (org %s)", approval.pk, org_id)
        # Nothing can be continued; marked, so the sweep does not try again every time.
        ActionApproval.objects.for_org(org_id).filter(pk=approval.pk).update(continued_at=timezone.now())
        return
    compiled = compile_saved(org_id, conversation.agent_id, conversation.version)
    state = {k: v for k, v in conversation.state.items() if k != AWAITING}
    if engine_for(compiled).reads_history:
        history, earlier = conversation_history(conversation)[: approval.turn - 1], 1
    else:
        history, earlier = [], approval.turn
    session = Session(
        conversation_id=str(conversation.pk),
        compiled=compiled,
        variables=conversation.variables,
        overrides=conversation.overrides,
        history=history,
        earlier_turns=earlier,
        state=dict(state),
        approvals=gate,
    )

    async def collect():
        return [frame async for frame in session.respond(text, again=True)]

    frames = _run(collect())
    # What the conversation already showed (up to this call's request) is not sent again.
    for n, frame in enumerate(frames):
        if frame["type"] == "tool_approval_requested" and frame.get("approval") == str(approval.pk):
            frames = frames[n + 1 :]
            break
    after = approval.request_seq
    seqs = {
        frame["approval"]: after + n
        for n, frame in enumerate(frames, start=1)
        if frame["type"] == "tool_approval_requested"
    }
    outcomes = _outcomes(frames, chain)
    try:
        with transaction.atomic():
            locked = ActionApproval.objects.for_org(org_id).select_for_update().get(pk=approval.pk)
            if locked.continued_at is not None:
                return  # another delivery of this task got here first
            locked.continued_at = timezone.now()
            locked.save(update_fields=["continued_at"])
            for known in chain:
                if known.pk in outcomes and known.outcome is None:
                    ActionApproval.objects.for_org(org_id).filter(pk=known.pk).update(
                        outcome=outcomes[known.pk]
                    )
            if session.awaiting:
                conversation_wait(
                    conversation=conversation,
                    turns=[],
                    state=state,
                    turn=approval.turn,
                    opened=gate.opened,
                    seqs=seqs,
                    events=frames,
                    after=after,
                )
            else:
                _store_events(conversation, approval.turn, frames, after)
                conversations_record([(conversation, session.take_pending(), session.state)])
    except IntegrityError:
        logger.warning("action approval %s: the turn was already written (org %s)", approval.pk, org_id)


def _outcomes(frames: list[dict], chain: list[ActionApproval]) -> dict:
    """Each approved call's tool_result in these frames, by approval."""
    by_call = {
        frame["tool_call_id"]: frame["approval"]
        for frame in frames
        if frame["type"] == "tool_approval_requested"
    }
    ids = {str(a.pk): a.pk for a in chain if a.status == ActionApprovalStatus.APPROVED}
    found = {}
    for frame in frames:
        if frame["type"] == "tool_result" and by_call.get(frame["tool_call_id"]) in ids:
            found[ids[by_call[frame["tool_call_id"]]]] = {
                k: frame[k] for k in ("result", "error") if k in frame
            }
    return found


def conversation_events(*, conversation: Conversation, after: int) -> dict:
    """The events of the conversation's latest waiting turn after `after`, and whether
    that turn is over (every call decided and the rest produced)."""

    def latest_turn():
        rows = list(
            ActionApproval.objects.for_org(conversation.org_id)
            .filter(conversation=conversation)
            .order_by("-turn", "position")
            .values("pk", "turn", "status", "expires_at", "continued_at")[:50]
        )
        return [r for r in rows if r["turn"] == rows[0]["turn"]] if rows else []

    chain = latest_turn()
    if not chain:
        return {"events": [], "done": True, "approval": None}
    lapsed = [r for r in chain if r["status"] == PENDING and r["expires_at"] <= timezone.now()]
    for row in lapsed:
        # A lapsed call is expired here too: the sweep runs only every so often.
        action_approval_expire(org_id=conversation.org_id, approval_id=row["pk"])
    if lapsed:
        chain = latest_turn()
    turn = chain[0]["turn"]
    events = [
        row.frame
        for row in ConversationEvent.objects.for_org(conversation.org_id)
        .filter(conversation=conversation, turn=turn, seq__gt=after)
        .order_by("seq")[:500]
    ]
    last = chain[-1]
    done = all(r["status"] != PENDING and r["continued_at"] is not None for r in chain)
    return {"events": events, "done": done, "approval": {"id": str(last["pk"]), "status": last["status"]}}
