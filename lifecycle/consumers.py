"""The sealed base for org-scoped WebSocket consumers.

Like the API base: the org comes from the path and membership is checked once; the
object must be visible (else the socket closes with 4404, the same as a missing one) and
its rule must allow the action (else 4403). Authentication is the browser session, with
an Origin check, or `?token=` for clients, without one (4401 when neither holds).
Subclasses implement `on_connect`, `on_frame` and `on_disconnect`; they cannot override
the connection handshake.
"""

from __future__ import annotations

import json
import logging
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.contrib.auth.models import AnonymousUser
from rest_framework.exceptions import AuthenticationFailed

from .access import Access, resolve_access
from .api import Rule
from .audit import audit_record
from .denials import audit_outsider
from .errors import NotFound
from .origin import websocket_origin_allowed
from .sealing import check_sealed

logger = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED, CLOSE_FORBIDDEN, CLOSE_NOT_FOUND = 4401, 4403, 4404
# The handshake and everything it trusts: who the caller is, and which object the path names.
SEALED_CONSUMER_METHODS = (
    "connect",
    "websocket_connect",
    "dispatch",
    "receive",
    "disconnect",
    "_authenticate",
    "_user_for_token",
    "_origin_allowed",
    "_resolve",
)


class OrgScopedConsumer(AsyncWebsocketConsumer):
    #: The tenant model the path names, its URL kwarg, and its stage field for visibility.
    model = None
    url_kwarg = "pk"
    stage_field: str | None = "stage"
    #: The rule for connecting (see lifecycle.api's rules).
    rule: Rule | None = None
    #: No channel-layer subscription: these sockets talk only to their own client. One
    #: would cost each socket a blocking Redis read, looped every 5 s, and channels-redis
    #: on redis-py has been seen here to swallow that read's cancellation, leaving a
    #: consumer running after its socket closed. A consumer that needs groups names a layer.
    channel_layer_alias = None

    access: Access
    obj = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        check_sealed(cls, OrgScopedConsumer, SEALED_CONSUMER_METHODS, "org-scoped consumers")
        if cls.rule is None:
            raise TypeError(f"{cls.__qualname__} has no rule.")

    # --- sealed -------------------------------------------------------------------------
    async def connect(self):
        await self.accept()  # accept first, so the client receives our close code
        user = await self._authenticate()
        if user is None:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        kwargs = self.scope["url_route"]["kwargs"]
        try:
            self.access, self.obj = await database_sync_to_async(self._resolve)(user, kwargs)
        except NotFound:
            await self.close(code=CLOSE_NOT_FOUND)
            return
        if not self.rule.allows(self.access, self, self.obj):
            await database_sync_to_async(self._audit_denied)()
            await self.close(code=CLOSE_FORBIDDEN)
            return
        await self.on_connect()

    async def dispatch(self, message):
        # Channels closes stale database connections before every message: a trip through
        # the one thread all sync database work shares, per frame. Our database work all
        # goes through database_sync_to_async, which does that itself, so frames skip it.
        if message["type"] == "websocket.receive":
            await self.websocket_receive(message)
        else:
            await super().dispatch(message)

    async def receive(self, text_data=None, bytes_data=None):
        # A client may send before it reads our close: frames of a refused connection
        # never reach the subclass (it was never set up for them).
        if self.obj is None:
            return
        await self.on_frame(text_data, bytes_data)

    async def disconnect(self, code):
        if self.obj is not None:
            await self.on_disconnect(code)

    # --- hooks --------------------------------------------------------------------------
    async def on_connect(self):
        """Called once the caller may use the object."""

    async def on_frame(self, text_data, bytes_data):
        raise NotImplementedError

    async def on_disconnect(self, code):
        """Called when an accepted, authorised connection ends."""

    # --- internals ----------------------------------------------------------------------
    async def _authenticate(self):
        token = parse_qs(self.scope.get("query_string", b"").decode()).get("token", [""])[0]
        if token:
            return await database_sync_to_async(self._user_for_token)(token)
        # Channels' AuthMiddleware has already loaded the session's user into the scope.
        user = self.scope.get("user") or AnonymousUser()
        if not user.is_authenticated or not user.is_active:
            return None
        # A session cookie is only good from our own pages (cross-site WebSocket hijacking).
        return user if self._origin_allowed() else None

    def _user_for_token(self, token: str):
        from accounts.authentication import TokenAuthentication

        try:
            user, _ = TokenAuthentication().authenticate_key(token)
        except AuthenticationFailed:
            return None
        return user

    def _origin_allowed(self) -> bool:
        return websocket_origin_allowed(self.scope)  # scheme, host and port (origin.py)

    def _resolve(self, user, kwargs):
        path = self.scope.get("path", "")
        try:
            access = resolve_access(user, kwargs.get("org", ""))
        except NotFound:
            audit_outsider(user=user, slug=kwargs.get("org", ""), method="WEBSOCKET", path=path)
            raise
        objects = self.model.objects.for_org(access.org)
        if self.stage_field:
            objects = access.visible(objects, stage_field=self.stage_field)
        pk = kwargs.get(self.url_kwarg)
        obj = objects.filter(pk=pk).select_related().first()
        if obj is None:
            # Closed with 4404 like a missing one; one that exists but is hidden is a denial.
            if self.model.objects.for_org(access.org).filter(pk=pk).exists():
                audit_record(
                    org=access.org,
                    actor=user,
                    action="access.denied",
                    target_type=self.model._meta.model_name,
                    target_id=str(pk)[:64],
                    changes={"method": "WEBSOCKET", "path": path, "reason": "no role in stage"},
                )
            raise NotFound()
        return access, obj

    def _audit_denied(self):
        audit_record(
            org=self.access.org,
            actor=self.access.user,
            action="access.denied",
            target=self.obj,
            changes={"method": "WEBSOCKET", "path": self.scope.get("path", ""), "reason": "rule"},
        )

    async def send_json(self, frame: dict) -> None:
        await self.send(text_data=json.dumps(frame, default=str))
