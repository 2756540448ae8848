"""Releases of one agent: GET/POST /api/v1/orgs/{org}/agents/{id}/releases/ and …/{rid}/."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from agents.api.views import VIEW, AgentChildMixin
from lifecycle.api import ObjectAction, OrgScopedViewSet
from lifecycle.endpoints import OperationAcceptedSerializer, operation_accepted
from lifecycle.operations import Operation
from lifecycle.serializers import StrictSerializer, UserRefSerializer

from ..models import Release, ReleaseStatus, ReleaseStrategy
from ..services.release import release_create
from .serializers import override_freeze_field


class ReleaseSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    agent = serializers.UUIDField(source="agent_id", read_only=True)
    status = serializers.ChoiceField(choices=ReleaseStatus.choices, read_only=True)
    strategy = serializers.ChoiceField(choices=ReleaseStrategy.choices, read_only=True)
    stable_version = serializers.IntegerField(read_only=True, allow_null=True)
    candidate_version = serializers.IntegerField(read_only=True)
    weight = serializers.IntegerField(read_only=True, help_text="The candidate's share of traffic, 0-100.")
    step = serializers.IntegerField(read_only=True)
    steps = serializers.JSONField(read_only=True)
    analysis = serializers.JSONField(read_only=True, help_text='[{"at","verdict","metrics","reason"}]')
    changelog = serializers.CharField(read_only=True)
    created_by = UserRefSerializer(read_only=True, allow_null=True)
    created_at = serializers.DateTimeField(read_only=True)
    finished_at = serializers.DateTimeField(read_only=True, allow_null=True)
    reason = serializers.CharField(read_only=True)


class ReleaseCreateSerializer(StrictSerializer):
    version = serializers.IntegerField(min_value=1, help_text="The saved version to make live.")
    strategy = serializers.ChoiceField(
        choices=ReleaseStrategy.choices,
        default=ReleaseStrategy.DIRECT,
        help_text="Only `direct` is available yet; the others answer 400.",
    )
    changelog = serializers.CharField(max_length=10_000, help_text="What changes for live users.")
    override_freeze = override_freeze_field()

    class Meta:
        output = ReleaseSerializer


class ReleaseViewSet(AgentChildMixin, OrgScopedViewSet):
    """Who made which version live, when and why; a manager of the agent's stage releases."""

    model = Release
    # Rows are reached through their agent, whose visibility (stage role or grant) the
    # parent lookup already decides; a stage filter here would hide granted agents' rows.
    stage_field = None
    serializer_class = ReleaseSerializer
    # Reading the history takes what reading the agent takes; the service requires the
    # manager role of the agent's stage to release (403 otherwise, audited).
    rules = {"list": VIEW, "retrieve": VIEW, "create": ObjectAction("manage")}
    schema_error_codes = {"POST": (423,)}

    def refine_queryset(self, queryset):
        return queryset.select_related("created_by").order_by("-created_at")

    def list(self, request, org, agent_id):
        return self.paginated(self.get_queryset(), ReleaseSerializer)

    def retrieve(self, request, org, agent_id, pk):
        return Response(self.represent(self.get_object()))

    @extend_schema(
        request=ReleaseCreateSerializer,
        responses={201: ReleaseSerializer, 202: OperationAcceptedSerializer},
    )
    def create(self, request, org, agent_id):
        data = ReleaseCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        made = release_create(access=self.access, agent=self.get_parent(), **data.validated_data)
        if isinstance(made, Operation):  # the stage requires approvals: it waits for them
            return operation_accepted(made)
        return Response(self.represent(made), status=status.HTTP_201_CREATED)
