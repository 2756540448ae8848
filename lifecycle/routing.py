"""WebSocket routes of the whole project (the project level, not the kernel)."""

from django.urls import path

from agents.consumers import ConversationConsumer

websocket_urlpatterns = [
    path("ws/orgs/<slug:org>/agents/<uuid:agent_id>/conversation/", ConversationConsumer.as_asgi()),
]
