"""Action approvals over the API: the inbox, deciding, and the metrics per stage."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.models import Stage
from lifecycle.api import Member, ObjectAction, OrgScopedViewSet
from lifecycle.errors import Invalid, NotFound
from lifecycle.serializers import StrictSerializer, UserRefSerializer

from ..models import ActionApproval, ActionApprovalStatus
from ..selectors import action_approval_metrics, action_approvals_visible
from ..services.action_approvals import action_approval_decide


class ActionApprovalSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    status = serializers.CharField(read_only=True)
    tool_call_id = serializers.CharField(read_only=True)
    tool_name = serializers.CharField(read_only=True)
    parameters = serializers.JSONField(read_only=True, help_text="Secrets masked.")
    user_text = serializers.CharField(read_only=True, help_text="What the user had just said.")
    conversation = serializers.UUIDField(source="conversation_id", read_only=True)
    source = serializers.CharField(source="conversation.source", read_only=True)
    agent = serializers.UUIDField(source="agent_id", read_only=True)
    stage = serializers.CharField(source="stage.slug", read_only=True)
    version = serializers.IntegerField(read_only=True)
    decided_by = UserRefSerializer(read_only=True, allow_null=True)
    comment = serializers.CharField(read_only=True)
    requested_at = serializers.DateTimeField(read_only=True)
    decided_at = serializers.DateTimeField(read_only=True, allow_null=True)
    expires_at = serializers.DateTimeField(read_only=True)


class DecisionSerializer(StrictSerializer):
    comment = serializers.CharField(max_length=2000, allow_blank=True, required=False, default="")


class MetricsSerializer(serializers.Serializer):
    stage = serializers.CharField()
    version = serializers.IntegerField(allow_null=True)
    requested = serializers.IntegerField()
    pending = serializers.IntegerField()
    approved = serializers.IntegerField()
    rejected = serializers.IntegerField()
    expired = serializers.IntegerField()
    approval_rate = serializers.FloatField(allow_null=True)
    median_seconds_to_decision = serializers.FloatField(allow_null=True)


class MetricsQuerySerializer(StrictSerializer):
    stage = serializers.SlugField()
    version = serializers.IntegerField(
        min_value=1, max_value=2**31, required=False, allow_null=True, default=None
    )


class ActionApprovalViewSet(OrgScopedViewSet):
    """Tool calls waiting for a person: editors and managers of the stage decide."""

    model = ActionApproval
    stage_field = "stage"
    serializer_class = ActionApprovalSerializer
    rules = {
        "list": Member(),
        "retrieve": Member(),
        "approve": ObjectAction("change"),
        "reject": ObjectAction("change"),
        "metrics": Member(),
    }
    schema_error_codes = {"POST": (409,)}

    def refine_queryset(self, queryset):
        queryset = action_approvals_visible(self.access, queryset).select_related(
            "conversation", "stage", "decided_by"
        )
        status = self.request.query_params.get("status")
        if status:
            if status not in ActionApprovalStatus.values:
                raise Invalid(fields={"status": [f"One of {', '.join(ActionApprovalStatus.values)}."]})
            queryset = queryset.filter(status=status)
        stage = self.request.query_params.get("stage")
        return queryset.filter(stage__slug=stage) if stage else queryset

    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, enum=ActionApprovalStatus.values),
            OpenApiParameter("stage", str, description="A stage slug."),
        ]
    )
    def list(self, request, org):
        return self.paginated(self.get_queryset(), ActionApprovalSerializer)

    def retrieve(self, request, org, pk):
        return Response(self.represent(self.get_object()))

    @extend_schema(request=DecisionSerializer, responses={200: ActionApprovalSerializer})
    @action(detail=True, methods=["post"])
    def approve(self, request, org, pk):
        return self._decide(ActionApprovalStatus.APPROVED)

    @extend_schema(request=DecisionSerializer, responses={200: ActionApprovalSerializer})
    @action(detail=True, methods=["post"])
    def reject(self, request, org, pk):
        return self._decide(ActionApprovalStatus.REJECTED)

    def _decide(self, decision: str):
        data = DecisionSerializer(data=self.request.data)
        data.is_valid(raise_exception=True)
        approval = action_approval_decide(
            access=self.access, approval=self.get_object(), decision=decision, **data.validated_data
        )
        return Response(self.represent(approval))

    @extend_schema(parameters=[MetricsQuerySerializer], responses={200: MetricsSerializer})
    @action(detail=False, methods=["get"])
    def metrics(self, request, org):
        """Approval rate and time to decision for a stage (and a version)."""
        query = MetricsQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        stage = Stage.objects.for_org(self.org).filter(slug=query.validated_data["stage"]).first()
        if stage is None or not self.access.has_stage_role(stage, "viewer"):
            raise NotFound()
        version = query.validated_data["version"]
        metrics = action_approval_metrics(self.org, stage, version)
        return Response(MetricsSerializer({"stage": stage.slug, "version": version, **metrics}).data)
