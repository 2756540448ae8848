"""Test runs of one agent: POST/GET /api/v1/orgs/{org}/agents/{id}/test-runs/ and …/{rid}/."""

import uuid

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.response import Response

from agents.api.views import VIEW, AgentChildMixin
from lifecycle.api import ObjectAction, OrgScopedViewSet
from lifecycle.endpoints import OperationAcceptedSerializer, operation_accepted
from lifecycle.errors import Invalid
from lifecycle.serializers import StrictSerializer, UserRefSerializer

from ..models import EvaluationStatus, TestRun, TestSuite
from ..services.test_runs import run_status, test_run_start
from .fields import VersionField

__test__ = False  # named test_*, but not a test module: pytest collects nothing here


class CaseResultSerializer(serializers.Serializer):
    case = serializers.UUIDField()
    name = serializers.CharField()
    passed = serializers.BooleanField()
    reasons = serializers.JSONField(
        help_text='[{"turn","type","expected","got"}], one per failed expectation.'
    )
    conversation = serializers.UUIDField()
    latency_ms = serializers.IntegerField(allow_null=True)
    scores = serializers.JSONField(
        required=False,
        help_text='{"relevance","groundedness","intent_resolution","tool_call_accuracy"}: 0-1, or null where '
        "a scorer does not apply.",
    )
    judge = serializers.JSONField(
        required=False,
        allow_null=True,
        help_text="The org's LLM judge: "
        '{"relevance","groundedness" (0-1, the mean over the turns it scored),"model","turns"}; '
        "null without a judge or when it gave no score.",
    )


class TestRunSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    suite = serializers.UUIDField(source="suite_id", read_only=True)
    agent = serializers.UUIDField(source="agent_id", read_only=True)
    stage = serializers.SlugField(source="stage.slug", read_only=True)
    version = serializers.IntegerField(read_only=True, allow_null=True, help_text="null: the working copy.")
    status = serializers.SerializerMethodField()
    accuracy = serializers.FloatField(read_only=True, allow_null=True)
    passed = serializers.IntegerField(read_only=True)
    failed = serializers.IntegerField(read_only=True)
    cases = CaseResultSerializer(many=True, read_only=True)
    scores = serializers.JSONField(read_only=True)
    safety = serializers.JSONField(read_only=True)
    operation = serializers.UUIDField(source="operation_id", read_only=True, allow_null=True)
    created_by = UserRefSerializer(read_only=True, allow_null=True)
    created_at = serializers.DateTimeField(read_only=True)
    finished_at = serializers.DateTimeField(read_only=True, allow_null=True)

    @extend_schema_field(serializers.ChoiceField(choices=EvaluationStatus.choices))
    def get_status(self, run) -> str:
        return run_status(run)


class TestRunCreateSerializer(StrictSerializer):
    suite = serializers.UUIDField()
    version = VersionField()

    class Meta:
        output = TestRunSerializer


class TestRunViewSet(AgentChildMixin, OrgScopedViewSet):
    """Runs of the lineage's suites on this agent; editors of its stage start them."""

    schema_error_codes = {"POST": (402,)}  # the stage's budget is spent and blocks the run

    __test__ = False
    model = TestRun
    # Reached through the agent, whose visibility the parent lookup decides.
    stage_field = None
    serializer_class = TestRunSerializer
    # The service requires the editor role of the agent's stage (403 otherwise).
    rules = {"list": VIEW, "retrieve": VIEW, "create": ObjectAction("change")}

    def refine_queryset(self, queryset):
        return queryset.select_related("created_by", "stage", "operation").order_by("-created_at")

    @extend_schema(parameters=[OpenApiParameter("suite", str, description="Only this suite's runs.")])
    def list(self, request, org, agent_id):
        queryset = self.get_queryset()
        suite = request.query_params.get("suite")
        if suite:
            try:
                queryset = queryset.filter(suite_id=uuid.UUID(suite))
            except ValueError:
                raise Invalid(fields={"suite": ["Not a suite id."]}) from None
        return self.paginated(queryset, TestRunSerializer)

    def retrieve(self, request, org, agent_id, pk):
        return Response(self.represent(self.get_object()))

    @extend_schema(request=TestRunCreateSerializer, responses={202: OperationAcceptedSerializer})
    def create(self, request, org, agent_id):
        data = TestRunCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        agent = self.get_parent()
        suite = (
            TestSuite.objects.for_org(self.access.org)
            .filter(pk=data.validated_data["suite"], lineage_id=agent.lineage_id, archived_at__isnull=True)
            .first()
        )
        if suite is None:
            raise Invalid(fields={"suite": ["Choose a suite of this agent's lineage."]})
        operation = test_run_start(
            access=self.access, agent=agent, suite=suite, version=data.validated_data["version"]
        )
        return operation_accepted(operation)
