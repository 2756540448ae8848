from rest_framework import serializers

from ..selectors import number


class AlertSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    stage = serializers.CharField(source="stage.slug", read_only=True)
    agent = serializers.UUIDField(source="agent_id", read_only=True, allow_null=True)
    version = serializers.IntegerField(read_only=True, allow_null=True)
    metric = serializers.CharField(read_only=True)
    level = serializers.CharField(read_only=True, help_text="warning | critical")
    value = serializers.SerializerMethodField(help_text="A decimal string (money: with cents).")
    threshold = serializers.SerializerMethodField(help_text="A decimal string, like value.")
    details = serializers.JSONField(read_only=True, help_text='spend: {"month","budget","ratio"}')
    opened_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)
    resolved_at = serializers.DateTimeField(read_only=True, allow_null=True)

    def get_value(self, alert) -> str:
        return number(alert.value, alert.metric)

    def get_threshold(self, alert) -> str:
        return number(alert.threshold, alert.metric)
