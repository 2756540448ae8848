"""The gateway's routes: /api/v1/run/{org}/{lineage}/{stage}/… (stage API keys)."""

from django.urls import path

from .. import gateway

RUN = "run/<slug:org>/<slug:lineage>/<slug:stage>/conversations/"

urlpatterns = [
    path(RUN, gateway.ConversationsView.as_view(), name="run-conversations"),
    path(RUN + "<uuid:cid>/messages/", gateway.MessagesView.as_view(), name="run-messages"),
    path(RUN + "<uuid:cid>/rating/", gateway.RatingView.as_view(), name="run-rating"),
    path(RUN + "<uuid:cid>/events/", gateway.EventsView.as_view(), name="run-events"),
]
