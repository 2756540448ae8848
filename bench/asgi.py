"""The app's ASGI application plus an echo consumer: the WebSocket benchmark's baseline."""

import json
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")

from django.core.asgi import get_asgi_application

django_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from lifecycle.routing import websocket_urlpatterns  # noqa: E402


class Echo(AsyncWebsocketConsumer):
    """Answers each user_message at once with an agent_response: no auth, no engine, no DB.

    Like the console, it does not subscribe to the channel layer."""

    channel_layer_alias = None

    async def connect(self):
        self.seq = 0
        await self.accept()

    async def receive(self, text_data=None, bytes_data=None):
        frame = json.loads(text_data)
        if frame.get("type") == "user_message":
            self.seq += 1
            await self.send(json.dumps({"type": "agent_response", "text": frame["text"], "seq": self.seq}))


application = ProtocolTypeRouter(
    {
        "http": django_app,
        "websocket": AuthMiddlewareStack(
            URLRouter([path("ws/bench/echo/", Echo.as_asgi()), *websocket_urlpatterns])
        ),
    }
)

from lifecycle.asgi import settle_garbage_collector  # noqa: E402

settle_garbage_collector()  # as the app's own entry point does
