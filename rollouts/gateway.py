"""The gateway: live traffic into a stage, authenticated by that stage's API key.

    POST /api/v1/run/{org}/{lineage}/{stage}/conversations/                 start
    POST /api/v1/run/{org}/{lineage}/{stage}/conversations/{cid}/messages/   talk (JSON or SSE)
    POST /api/v1/run/{org}/{lineage}/{stage}/conversations/{cid}/rating/     rate

These routes are on the kernel's STAGE_KEY_ROUTES allowlist: they are not for members
but for a stage's key, and every query is scoped to the key's org and stage. A bad key,
a revoked one, or a key for another stage or org is 401. Each key has a request budget
per minute (429 past it), counted in the shared cache (Redis when configured).
"""

from __future__ import annotations

import asyncio
import copy
import json
import time
import uuid

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.db import IntegrityError
from django.http import StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response

from accounts.models import Stage
from accounts.tokens import hash_key
from agents.hooks import action_approval_policy
from agents.models import Conversation, ConversationSource
from agents.runtime.approvals import LiveGate
from agents.runtime.compile import compile_saved, compile_version
from agents.runtime.engine import engine_for
from agents.runtime.session import Session
from agents.services.action_approvals import AWAITING, conversation_events, conversation_wait
from agents.services.conversations import (
    conversation_history,
    conversation_rate,
    conversation_record,
    conversation_start,
)
from lifecycle.api import PublicAPIView
from lifecycle.cache import count
from lifecycle.errors import Conflict, NotFound, Throttled
from lifecycle.prepared import PreparedRead, loaded
from lifecycle.serializers import StrictSerializer

from .models import StageKey
from .services.live_safety import live_sample_enqueue
from .serving import live_agent, serving_version
from .spending import budget_guard

STAGE_KEY_FIELDS = ("id", "org_id", "stage_id", "last_used_at")

# The key is looked up inside the org the URL names, for the stage it names, in one
# query: a key never reaches across orgs, nor into another stage.
KEY_READ = PreparedRead(
    lambda org, stage, key_hash: (
        StageKey.objects.for_org_slug(org)
        .filter(key_hash=key_hash, revoked_at__isnull=True, stage__slug=stage)
        .order_by()
    ),
    fields=(*STAGE_KEY_FIELDS, "stage__slug"),
    org=str,
    stage=str,
    key_hash=str,
)


class StageKeyAuthentication(BaseAuthentication):
    """`Authorization: Bearer <stage key>`, valid only for its own org and stage."""

    def authenticate(self, request):
        header = get_authorization_header(request).split()
        if len(header) != 2 or header[0].lower() != b"bearer":
            raise exceptions.AuthenticationFailed("A stage API key is required: Authorization: Bearer <key>.")
        kwargs = request.parser_context["kwargs"]
        found = KEY_READ.first(
            org=kwargs.get("org", ""),
            stage=kwargs.get("stage", ""),
            key_hash=hash_key(header[1].decode(errors="replace")),
        )
        if found is None:
            raise exceptions.AuthenticationFailed("Invalid stage key for this stage.")
        key = loaded(StageKey, {f: found[f] for f in STAGE_KEY_FIELDS})
        key.stage = loaded(
            Stage, {"id": found["stage_id"], "org_id": found["org_id"], "slug": found["stage__slug"]}
        )
        now = timezone.now()
        if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
            StageKey.objects.for_org(key.org_id).filter(pk=key.pk).update(last_used_at=now)
        return AnonymousUser(), key

    def authenticate_header(self, request):
        return 'Bearer realm="gateway"'


class StageKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "rollouts.gateway.StageKeyAuthentication"
    name = "stageKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "A stage API key (lcs_…)."}


class HasStageKey(BasePermission):
    def has_permission(self, request, view):
        return isinstance(request.auth, StageKey)


def spend(key: StageKey) -> None:
    """One request from this key's per-minute budget."""
    window = int(time.time() // 60)
    if count(f"gateway-rate:{key.pk}:{window}", timeout=120) > settings.GATEWAY_RATE_PER_MINUTE:
        raise Throttled("This stage key is over its request budget.", retry_after=60 - int(time.time()) % 60)


class GatewayView(PublicAPIView):
    """Base of the live-traffic endpoints: a stage key, scoped to its org and stage."""

    authentication_classes = [StageKeyAuthentication]
    permission_classes = [HasStageKey]
    throttle_classes = []

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        self.key: StageKey = request.auth
        spend(self.key)

    def get_permissions(self):
        return [HasStageKey()]

    def agent(self, lineage: str):
        agent = live_agent(self.key.stage, lineage)
        if agent is None:
            raise NotFound()
        return agent

    def conversation(self, lineage: str, cid: uuid.UUID) -> Conversation:
        """A live conversation with the lineage's agent in this key's stage: one query."""
        found = CONVERSATION_READ.first(
            org=self.key.org_id, stage=self.key.stage_id, lineage=lineage, cid=cid
        )
        if found is None:
            raise NotFound()
        return loaded(Conversation, found)


CONVERSATION_FIELDS = tuple(f.attname for f in Conversation._meta.concrete_fields)
CONVERSATION_READ = PreparedRead(
    lambda org, stage, lineage, cid: (
        Conversation.objects.for_org(org)
        .filter(
            pk=cid,
            source=ConversationSource.LIVE,
            agent__stage_id=stage,
            agent__lineage__slug=lineage,
            agent__archived_at__isnull=True,
        )
        .order_by()
    ),
    fields=CONVERSATION_FIELDS,
    org=uuid.UUID,
    stage=uuid.UUID,
    lineage=str,
    cid=uuid.UUID,
)


SCALAR = (str, int, float, bool)


class StartSerializer(StrictSerializer):
    user = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    variables = serializers.DictField(required=False, default=dict)

    def validate_variables(self, value):
        if len(value) > 100 or not all(isinstance(v, SCALAR) for v in value.values()):
            raise serializers.ValidationError("At most 100 variables, each a string, number or boolean.")
        return {k: str(v) for k, v in value.items()}


class StartedSerializer(serializers.Serializer):
    conversation = serializers.UUIDField()
    version = serializers.IntegerField()
    first_message = serializers.CharField(allow_blank=True)


class MessageSerializer(StrictSerializer):
    text = serializers.CharField(max_length=10_000)


class EventsSerializer(serializers.Serializer):
    events = serializers.ListField(child=serializers.DictField())


class RatingSerializer(StrictSerializer):
    rating = serializers.IntegerField(min_value=1, max_value=5)


class ConversationsView(GatewayView):
    """Start a live conversation with the lineage's agent in this stage, served by its
    live version (409 `not_live` when no release has made one live; 402
    `budget_exhausted` when the stage's monthly budget is spent and blocks live traffic)."""

    schema_error_codes = {"POST": (402,)}

    @extend_schema(request=StartSerializer, responses={201: StartedSerializer})
    def post(self, request, org, lineage, stage):
        data = StartSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        agent = self.agent(lineage)
        # Before anything is written; conversations already open go on (messages do not ask).
        budget_guard(stage=self.key.stage, source=ConversationSource.LIVE)
        # The id is chosen here: without a `user`, it is the key of the sticky split.
        cid = uuid.uuid4()
        version = serving_version(agent, data.validated_data["user"] or str(cid))
        conversation = conversation_start(
            conversation_id=cid,
            agent=agent,
            version=version.number,
            draft=False,
            source=ConversationSource.LIVE,
            end_user=data.validated_data["user"],
            variables=data.validated_data["variables"],
        )
        session = Session(
            conversation_id=str(conversation.pk),
            compiled=compile_version(version),
            variables=data.validated_data["variables"],
        )
        first = session.first_message()
        conversation_record(conversation=conversation, turns=session.take_pending())
        body = {
            "conversation": conversation.pk,
            "version": version.number,
            "first_message": first["text"] if first else "",
        }
        return Response(StartedSerializer(body).data, status=201)


def _gate_for(conversation: Conversation) -> LiveGate | None:
    """The stage's tools that wait for a person (read from the cache: no query)."""
    tools = action_approval_policy(org_id=conversation.org_id, stage_id=conversation.stage_id)["tools"]
    return LiveGate(tools=tools) if tools else None


def _session_for(conversation: Conversation) -> Session:
    compiled = compile_saved(conversation.org_id, conversation.agent_id, conversation.version)
    if engine_for(compiled).reads_history:
        history, earlier = conversation_history(conversation), 0
    else:  # a long conversation costs no more per message than a short one
        history, earlier = [], conversation.turn_count
    return Session(
        conversation_id=str(conversation.pk),
        compiled=compiled,
        variables=conversation.variables,
        overrides=conversation.overrides,
        history=history,
        earlier_turns=earlier,
        state=copy.deepcopy(conversation.state),
        approvals=_gate_for(conversation),
    )


def _record(conversation: Conversation, session: Session, events: list[dict]) -> None:
    turns = session.take_pending()
    try:
        if session.awaiting:
            # The turn stopped at a call that waits for a person: it is run again from
            # the state it began with once that call is decided.
            conversation_wait(
                conversation=conversation,
                turns=turns,
                state=conversation.state,
                turn=session.context.turn,
                opened=session.approvals.opened,
                seqs={e["approval"]: e["seq"] for e in events if e["type"] == "tool_approval_requested"},
            )
            return
        state = session.state if session.state != conversation.state else None
        conversation_record(conversation=conversation, turns=turns, state=state)
    except IntegrityError as exc:  # the same turn numbers, taken by a concurrent message
        raise Conflict(
            "Another message to this conversation was answered at the same time. "
            "Send one message at a time, and this one again."
        ) from exc
    live_sample_enqueue(conversation, turns)


def run_here(coroutine):
    """Run a coroutine to its end on an event loop of this thread's own.

    The view is sync, on one of the server's worker threads; async_to_sync would hand
    the engine to the server's main loop and wait for it: two thread hops per message,
    and a turn in the queue of a loop busy with every other request. The engine needs
    no database, so it runs right here (a new loop costs about 50 µs).
    """
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coroutine)
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


async def _frames(session: Session, text: str):
    seq = 0
    async for frame in session.respond(text):
        seq += 1
        yield {**frame, "seq": seq}


class EventStreamRenderer(BaseRenderer):
    """Lets `Accept: text/event-stream` through negotiation; errors are still the JSON envelope."""

    media_type = "text/event-stream"
    format = "sse"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return json.dumps(data).encode()


class MessagesView(GatewayView):
    """Send a message; the reply's events as JSON, or as a server-sent event stream."""

    renderer_classes = [JSONRenderer, EventStreamRenderer]

    @extend_schema(request=MessageSerializer, responses={200: EventsSerializer})
    def post(self, request, org, lineage, stage, cid):
        data = MessageSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        conversation = self.conversation(lineage, cid)
        if conversation.ended_at is not None:
            raise Conflict("This conversation has ended.")
        if AWAITING in conversation.state:
            raise Conflict(
                "This conversation waits for a person to decide on an action; read its events.",
                details={"approval": conversation.state[AWAITING]},
            )
        session = _session_for(conversation)
        text = data.validated_data["text"]
        if "text/event-stream" in request.headers.get("Accept", ""):
            return self._stream(session, conversation, text)

        async def collect():
            return [frame async for frame in _frames(session, text)]

        events = run_here(collect())
        _record(conversation, session, events)
        return Response({"events": events})

    def _stream(self, session: Session, conversation: Conversation, text: str):
        record = sync_to_async(_record, thread_sensitive=True)

        async def stream():
            events = []
            async for frame in _frames(session, text):
                events.append(frame)
                yield f"event: {frame['type']}\ndata: {json.dumps(frame, default=str)}\n\n"
                await asyncio.sleep(0)
            try:
                await record(conversation, session, events)
            except Conflict as exc:  # the status line is long gone: say it in the stream
                error = {"code": exc.default_code, "message": exc.message}
                yield f"event: error\ndata: {json.dumps(error)}\n\n"
            yield "event: done\ndata: {}\n\n"

        response = StreamingHttpResponse(stream(), content_type="text/event-stream")
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"
        return response


class RatingView(GatewayView):
    @extend_schema(request=RatingSerializer, responses={200: RatingSerializer})
    def post(self, request, org, lineage, stage, cid):
        data = RatingSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        conversation = self.conversation(lineage, cid)
        conversation_rate(conversation=conversation, rating=data.validated_data["rating"])
        return Response({"rating": data.validated_data["rating"]})


class EventsQuerySerializer(StrictSerializer):
    after = serializers.IntegerField(min_value=0, max_value=2**31, required=False, default=0)
    wait = serializers.FloatField(min_value=0, max_value=30, required=False, default=20)


class ConversationEventsSerializer(serializers.Serializer):
    events = serializers.ListField(child=serializers.DictField())
    done = serializers.BooleanField(
        help_text="The turn is over: every waiting call decided, the rest produced."
    )
    approval = serializers.DictField(
        allow_null=True, help_text='The latest action approval: {"id","status"}.'
    )


EVENTS_POLL_SECONDS = 0.25


class EventsView(GatewayView):
    """What a live conversation produced after a call waited for a person: the events
    after `after` (the `seq` of the message's `tool_approval_requested`). A long-poll
    that answers as soon as there is something new, or after `wait` seconds; with
    `Accept: text/event-stream`, a stream of them that ends with `event: done`."""

    renderer_classes = [JSONRenderer, EventStreamRenderer]

    @extend_schema(parameters=[EventsQuerySerializer], responses={200: ConversationEventsSerializer})
    def get(self, request, org, lineage, stage, cid):
        query = EventsQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        conversation = self.conversation(lineage, cid)
        after, wait = query.validated_data["after"], query.validated_data["wait"]
        if "text/event-stream" in request.headers.get("Accept", ""):
            response = StreamingHttpResponse(
                _event_stream(conversation, after, wait), content_type="text/event-stream"
            )
            response["Cache-Control"] = "no-cache"
            response["X-Accel-Buffering"] = "no"
            return response
        deadline = time.monotonic() + wait
        while True:
            found = conversation_events(conversation=conversation, after=after)
            if found["events"] or found["done"] or time.monotonic() >= deadline:
                return Response(found)
            time.sleep(min(EVENTS_POLL_SECONDS, max(0.0, deadline - time.monotonic())))


def _event_stream(conversation: Conversation, after: int, wait: float):
    """Sync on purpose: each step reads the database (Django runs it off the event loop)."""
    deadline = time.monotonic() + wait
    while True:
        found = conversation_events(conversation=conversation, after=after)
        for frame in found["events"]:
            after = frame["seq"]
            yield f"event: {frame['type']}\ndata: {json.dumps(frame, default=str)}\n\n"
        if found["done"]:
            yield "event: done\ndata: {}\n\n"
            return
        if time.monotonic() >= deadline:
            return  # the client asks again with `after`
        time.sleep(EVENTS_POLL_SECONDS)
