"""Red-team runs of one agent: POST/GET /api/v1/orgs/{org}/agents/{id}/red-team/ and …/{rid}/."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from agents.api.views import VIEW, AgentChildMixin
from lifecycle.api import ObjectAction, OrgScopedViewSet
from lifecycle.endpoints import OperationAcceptedSerializer, operation_accepted
from lifecycle.serializers import StrictSerializer, UserRefSerializer

from ..models import EvaluationStatus, RedTeamRun
from ..redteam import CATEGORIES
from ..redteam.strategies import STRATEGIES
from ..services.redteam import redteam_start
from .fields import VersionField


class TableRowSerializer(serializers.Serializer):
    category = serializers.CharField()
    strategy = serializers.CharField()
    attacks = serializers.IntegerField()
    successes = serializers.IntegerField()
    asr = serializers.FloatField(allow_null=True, help_text="null: no attack ran in this cell.")


class FindingSerializer(serializers.Serializer):
    category = serializers.CharField()
    strategy = serializers.CharField()
    prompt = serializers.CharField(help_text="What was sent (each turn on a line), secrets masked.")
    response = serializers.CharField(help_text="The agent's answer, secrets masked.")
    evidence = serializers.CharField(help_text="Which canary leaked; never a secret value.")
    conversation = serializers.UUIDField(required=False)


class RedTeamRunSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    agent = serializers.UUIDField(source="agent_id", read_only=True)
    stage = serializers.SlugField(source="stage.slug", read_only=True)
    version = serializers.IntegerField(read_only=True, allow_null=True, help_text="null: the working copy.")
    status = serializers.ChoiceField(choices=EvaluationStatus.choices, read_only=True)
    categories = serializers.ListField(child=serializers.CharField(), read_only=True)
    strategies = serializers.ListField(child=serializers.CharField(), read_only=True)
    attacks = serializers.IntegerField(read_only=True)
    successes = serializers.IntegerField(read_only=True)
    attack_success_rate = serializers.FloatField(read_only=True, allow_null=True)
    table = TableRowSerializer(many=True, read_only=True)
    findings = FindingSerializer(many=True, read_only=True)
    operation = serializers.UUIDField(source="operation_id", read_only=True, allow_null=True)
    created_by = UserRefSerializer(read_only=True, allow_null=True)
    created_at = serializers.DateTimeField(read_only=True)
    finished_at = serializers.DateTimeField(read_only=True, allow_null=True)


class RedTeamCreateSerializer(StrictSerializer):
    categories = serializers.ListField(
        child=serializers.ChoiceField(choices=CATEGORIES), min_length=1, max_length=len(CATEGORIES),
    )  # fmt: skip
    strategies = serializers.ListField(
        child=serializers.ChoiceField(choices=STRATEGIES), min_length=1, max_length=len(STRATEGIES),
    )  # fmt: skip
    version = VersionField()

    class Meta:
        output = RedTeamRunSerializer


class RedTeamViewSet(AgentChildMixin, OrgScopedViewSet):
    """Red-team runs on this agent; editors of its stage start them."""

    schema_error_codes = {"POST": (402,)}  # the stage's budget is spent and blocks the run

    model = RedTeamRun
    # Reached through the agent, whose visibility the parent lookup decides.
    stage_field = None
    serializer_class = RedTeamRunSerializer
    # The service requires the editor role of the agent's stage (403 otherwise).
    rules = {"list": VIEW, "retrieve": VIEW, "create": ObjectAction("change")}

    def refine_queryset(self, queryset):
        return queryset.select_related("created_by", "stage").order_by("-created_at")

    def list(self, request, org, agent_id):
        return self.paginated(self.get_queryset(), RedTeamRunSerializer)

    def retrieve(self, request, org, agent_id, pk):
        return Response(self.represent(self.get_object()))

    @extend_schema(request=RedTeamCreateSerializer, responses={202: OperationAcceptedSerializer})
    def create(self, request, org, agent_id):
        data = RedTeamCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        operation = redteam_start(
            access=self.access,
            agent=self.get_parent(),
            categories=data.validated_data["categories"],
            strategies=data.validated_data["strategies"],
            version=data.validated_data["version"],
        )
        return operation_accepted(operation)
