"""Webhooks over the API: /api/v1/orgs/{org}/webhooks/… (owners and admins only)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from lifecycle.api import OrgAdmin, OrgScopedViewSet
from lifecycle.serializers import StrictSerializer, UserRefSerializer

from .events import EVENTS
from .models import Delivery, Webhook
from .services import webhooks as svc

EVENTS_HELP = 'Event names or patterns: exact names, "<group>.*" or "*". Known events: ' + ", ".join(
    e for e in EVENTS if e != "ping"
)


class WebhookSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    url = serializers.URLField(read_only=True)
    events = serializers.ListField(child=serializers.CharField(), read_only=True)
    format = serializers.ChoiceField(choices=["json", "slack"], read_only=True)
    description = serializers.CharField(read_only=True)
    enabled = serializers.BooleanField(read_only=True)
    has_secret = serializers.SerializerMethodField(help_text="Whether a secret is stored (never returned).")
    created_by = UserRefSerializer(read_only=True, allow_null=True)
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)

    def get_has_secret(self, webhook) -> bool:
        return bool(webhook.secret_encrypted)


class WebhookWriteSerializer(StrictSerializer):
    url = serializers.URLField(max_length=500)
    events = serializers.ListField(child=serializers.CharField(max_length=64), help_text=EVENTS_HELP)
    format = serializers.ChoiceField(choices=["json", "slack"], default="json")
    secret = serializers.CharField(
        required=False,
        allow_blank=True,
        allow_null=True,
        max_length=svc.MAX_SECRET,
        write_only=True,
        trim_whitespace=False,
        help_text="Write-only HMAC key (16-200 characters), required for format json. "
        'Omit on update to keep it; "" removes it (slack only).',
    )
    description = serializers.CharField(max_length=200, required=False, allow_blank=True)
    enabled = serializers.BooleanField(required=False)

    class Meta:
        output = WebhookSerializer


class WebhookUpdateSerializer(WebhookWriteSerializer):
    url = serializers.URLField(max_length=500, required=False)
    events = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False, help_text=EVENTS_HELP
    )
    format = serializers.ChoiceField(choices=["json", "slack"], required=False)


class AttemptSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    started_at = serializers.DateTimeField()
    duration_ms = serializers.IntegerField()
    status_code = serializers.IntegerField(allow_null=True)
    error = serializers.CharField()
    succeeded = serializers.BooleanField()
    next_retry_at = serializers.DateTimeField(allow_null=True)


class DeliverySerializer(serializers.Serializer):
    id = serializers.UUIDField()
    event_id = serializers.UUIDField(source="event.id")
    event = serializers.CharField(source="event.event")
    status = serializers.ChoiceField(choices=[s for s, _ in Delivery.STATUSES])
    attempt_count = serializers.IntegerField(source="attempts")
    next_attempt_at = serializers.DateTimeField(allow_null=True)
    last_status_code = serializers.IntegerField(allow_null=True)
    last_error = serializers.CharField()
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    attempts = AttemptSerializer(source="attempt_log.all", many=True)


def _secret(data):
    return data.get("secret", svc.KEEP)


class WebhookViewSet(OrgScopedViewSet):
    """An org's webhooks: where events are POSTed, signed with the webhook's secret."""

    model = Webhook
    stage_field = None  # org-wide
    serializer_class = WebhookSerializer
    lookup_value_regex = r"[0-9a-fA-F-]{32,36}"
    rules = {
        "list": OrgAdmin(),
        "create": OrgAdmin(),
        "retrieve": OrgAdmin(),
        "partial_update": OrgAdmin(),
        "destroy": OrgAdmin(),
        "deliveries": OrgAdmin(),
        "test": OrgAdmin(),
    }

    def refine_queryset(self, queryset):
        return queryset.select_related("created_by").order_by("created_at", "id")

    def list(self, request, org):
        return self.paginated(self.get_queryset(), WebhookSerializer)

    def retrieve(self, request, org, pk):
        return Response(self.represent(self.get_object()))

    @extend_schema(request=WebhookWriteSerializer, responses={201: WebhookSerializer})
    def create(self, request, org):
        data = WebhookWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        secret = _secret(values)
        values.pop("secret", None)
        webhook = svc.webhook_create(access=self.access, secret=secret, **values)
        return Response(self.represent(webhook), status=status.HTTP_201_CREATED)

    @extend_schema(request=WebhookUpdateSerializer, responses={200: WebhookSerializer})
    def partial_update(self, request, org, pk):
        data = WebhookUpdateSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        secret = _secret(values)
        values.pop("secret", None)
        webhook = svc.webhook_update(
            access=self.access,
            webhook=self.get_object(),
            guard=self.if_match_guard(),
            secret=secret,
            **values,
        )
        return Response(self.represent(webhook))

    @extend_schema(responses={204: None})
    def destroy(self, request, org, pk):
        svc.webhook_delete(access=self.access, webhook=self.get_object(), guard=self.if_match_guard())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses={200: DeliverySerializer(many=True)}, summary="The webhook's delivery log")
    @action(detail=True, methods=["get"])
    def deliveries(self, request, org, pk):
        webhook = self.get_object()
        rows = (
            Delivery.objects.for_org(self.org)
            .filter(webhook=webhook)
            .select_related("event")
            .prefetch_related("attempt_log")
            .order_by("-created_at", "-id")
        )
        return self.paginated(rows, DeliverySerializer)

    @extend_schema(request=None, responses={202: DeliverySerializer}, summary="Send a ping event")
    @action(detail=True, methods=["post"])
    def test(self, request, org, pk):
        delivery = svc.webhook_test(access=self.access, webhook=self.get_object())
        delivery = (
            Delivery.objects.for_org(self.org)
            .select_related("event")
            .prefetch_related("attempt_log")
            .get(pk=delivery.pk)
        )
        return Response(DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)
