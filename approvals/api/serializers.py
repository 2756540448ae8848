from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from lifecycle.serializers import StrictSerializer, UserRefSerializer

from ..services.approval import approvals_count, group_status


class DecisionSerializer(serializers.Serializer):
    user = UserRefSerializer(read_only=True)
    decision = serializers.CharField(read_only=True)
    comment = serializers.CharField(read_only=True)
    at = serializers.DateTimeField(read_only=True)


class GroupStatusSerializer(serializers.Serializer):
    name = serializers.CharField()
    members = serializers.ListField(child=serializers.UUIDField())
    required = serializers.IntegerField()
    approved = serializers.IntegerField()
    met = serializers.BooleanField()


class ApprovalRequestSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    kind = serializers.CharField(read_only=True)
    status = serializers.CharField(read_only=True)
    agent = serializers.UUIDField(source="agent_id", read_only=True)
    agent_name = serializers.CharField(source="agent.name", read_only=True)
    source_agent = serializers.UUIDField(source="source_agent_id", read_only=True, allow_null=True)
    target_stage = serializers.CharField(source="target_stage.slug", read_only=True)
    requested_by = UserRefSerializer(read_only=True)
    reason = serializers.CharField(read_only=True)
    required = serializers.IntegerField(read_only=True)
    approvals = serializers.SerializerMethodField()
    groups = serializers.SerializerMethodField()
    decisions = serializers.SerializerMethodField()
    operation = serializers.UUIDField(source="operation_id", read_only=True)
    expires_at = serializers.DateTimeField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    closed_at = serializers.DateTimeField(read_only=True, allow_null=True)
    closed_reason = serializers.CharField(read_only=True)

    def _decisions(self, request) -> list:
        # Prefetched on lists (one query for the page), fetched on a single request.
        return list(request.decisions.all())

    def get_approvals(self, request) -> int:
        return approvals_count(self._decisions(request))

    @extend_schema_field(GroupStatusSerializer(many=True))
    def get_groups(self, request) -> list:
        return group_status(request, self._decisions(request))

    @extend_schema_field(DecisionSerializer(many=True))
    def get_decisions(self, request) -> list:
        return DecisionSerializer(self._decisions(request), many=True).data


class ApprovalDetailSerializer(ApprovalRequestSerializer):
    evidence = serializers.DictField(
        read_only=True,
        help_text="requested (who, when, why), diff (with content), gate (checks now), test_runs, "
        "red_team, soak, source_changed",
    )


class CommentSerializer(StrictSerializer):
    comment = serializers.CharField(max_length=5000, allow_blank=True, required=False, default="")
