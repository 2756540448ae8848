"""Soak tests of one agent: POST/GET /api/v1/orgs/{org}/agents/{id}/soak-tests/ and …/{sid}/."""

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.response import Response

from agents.api.views import CHANGE, VIEW, AgentChildMixin
from lifecycle.api import OrgScopedViewSet
from lifecycle.endpoints import OperationAcceptedSerializer, operation_accepted
from lifecycle.serializers import StrictSerializer, UserRefSerializer

from ..models import EvaluationStatus, SoakTest
from ..services.soak import MAX_CONCURRENCY, MAX_EXECUTIONS, soak_start, soak_status
from .fields import VersionField


class SoakLatencySerializer(serializers.Serializer):
    p50 = serializers.FloatField(allow_null=True)
    p95 = serializers.FloatField(allow_null=True)
    p99 = serializers.FloatField(allow_null=True)


class SoakDriftSerializer(serializers.Serializer):
    p95_first_tenth_ms = serializers.FloatField(allow_null=True)
    p95_last_tenth_ms = serializers.FloatField(allow_null=True)


class SoakTestSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    agent = serializers.UUIDField(source="agent_id", read_only=True)
    version = serializers.IntegerField(read_only=True, allow_null=True, help_text="null: the working copy.")
    status = serializers.SerializerMethodField()
    params = serializers.JSONField(
        read_only=True, help_text='{"executions","duration","concurrency","suite"}'
    )
    executions = serializers.IntegerField(read_only=True, help_text="Executions completed.")
    errors = serializers.IntegerField(read_only=True)
    error_rate = serializers.FloatField(read_only=True, allow_null=True)
    latency_ms = SoakLatencySerializer(
        read_only=True, help_text="Nearest-rank percentiles of execution time."
    )
    throughput_per_s = serializers.FloatField(read_only=True, allow_null=True)
    drift = SoakDriftSerializer(read_only=True)
    operation = serializers.UUIDField(source="operation_id", read_only=True, allow_null=True)
    created_by = UserRefSerializer(read_only=True, allow_null=True)
    created_at = serializers.DateTimeField(read_only=True)
    finished_at = serializers.DateTimeField(read_only=True, allow_null=True)

    @extend_schema_field(serializers.ChoiceField(choices=EvaluationStatus.choices))
    def get_status(self, soak) -> str:
        return soak_status(soak)


class SoakTestCreateSerializer(StrictSerializer):
    executions = serializers.IntegerField(
        min_value=1,
        max_value=MAX_EXECUTIONS,
        required=False,
        help_text="How many conversations to run (or give a duration; with both, the first reached ends it).",
    )
    duration = serializers.CharField(
        required=False,
        allow_null=True,
        default=None,
        max_length=10,
        help_text='Run for this long instead of N executions: "90s", "10m", "2h", at most "24h".',
    )
    concurrency = serializers.IntegerField(min_value=1, max_value=MAX_CONCURRENCY, default=4)
    suite = serializers.UUIDField(
        required=False, allow_null=True, default=None, help_text="Script the executions with its cases."
    )
    version = VersionField()

    class Meta:
        output = OperationAcceptedSerializer

    def validate(self, attrs):
        # A soak says how long it runs: an empty body is a mistake, not "the defaults".
        if attrs.get("executions") is None and attrs.get("duration") is None:
            raise serializers.ValidationError({"executions": ["Give executions, a duration, or both."]})
        return attrs


class SoakTestViewSet(AgentChildMixin, OrgScopedViewSet):
    """Soak tests of an agent; starting one takes what editing the agent takes."""

    schema_error_codes = {"POST": (402,)}  # the stage's budget is spent and blocks the run

    model = SoakTest
    # Reached through their agent, whose visibility the parent lookup decides.
    stage_field = None
    serializer_class = SoakTestSerializer
    rules = {"list": VIEW, "retrieve": VIEW, "create": CHANGE}

    def refine_queryset(self, queryset):
        return queryset.select_related("created_by", "operation").order_by("-created_at")

    def list(self, request, org, agent_id):
        return self.paginated(self.get_queryset(), SoakTestSerializer)

    def retrieve(self, request, org, agent_id, pk):
        return Response(self.represent(self.get_object()))

    @extend_schema(request=SoakTestCreateSerializer, responses={202: OperationAcceptedSerializer})
    def create(self, request, org, agent_id):
        data = SoakTestCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return operation_accepted(
            soak_start(
                access=self.access,
                agent=self.get_parent(),
                executions=data.validated_data.pop("executions", None),
                **data.validated_data,
            )
        )
