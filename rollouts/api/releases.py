"""Releases of one agent: GET/POST /api/v1/orgs/{org}/agents/{id}/releases/, …/{rid}/, and
the actions …/{rid}/advance/, pause/, resume/ and rollback/."""

from django.db.models import Prefetch
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from agents.api.views import VIEW, AgentChildMixin
from lifecycle.api import ObjectAction, OrgScopedViewSet
from lifecycle.endpoints import OperationAcceptedSerializer, operation_accepted
from lifecycle.operations import Operation
from lifecycle.serializers import StrictSerializer, UserRefSerializer

from ..models import Release, ReleaseStatus, ReleaseStrategy, ReleaseVerdict
from ..services.release import release_create
from ..services.release_progress import release_advance, release_pause, release_resume, release_rollback
from .serializers import override_freeze_field


class VerdictSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    verdict = serializers.CharField(help_text="pass, fail, inconclusive or error")
    step = serializers.IntegerField()
    weight = serializers.IntegerField()
    metrics = serializers.JSONField(
        help_text="Per metric: the numbers of each arm, the test and its p-value."
    )
    reason = serializers.CharField()
    action = serializers.CharField(
        help_text="What it led to: advanced, rolled_back, paused, or empty (held)."
    )


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
    analysis = VerdictSerializer(
        source="verdict_list", many=True, read_only=True, help_text="Every analysis verdict, oldest first."
    )
    thresholds = serializers.JSONField(
        source="config.analysis", read_only=True, default=None, allow_null=True
    )
    keep_warm = serializers.CharField(
        source="config.keep_warm", read_only=True, default=None, allow_null=True
    )
    smoke = serializers.JSONField(source="config.smoke", read_only=True, default=None, allow_null=True)
    step_started_at = serializers.DateTimeField(read_only=True, allow_null=True)
    next_analysis_at = serializers.DateTimeField(read_only=True, allow_null=True)
    warm_until = serializers.DateTimeField(read_only=True, allow_null=True)
    safety_rollback = serializers.BooleanField(read_only=True)
    operation = serializers.UUIDField(source="operation_id", read_only=True, allow_null=True)
    changelog = serializers.CharField(read_only=True)
    created_by = UserRefSerializer(read_only=True, allow_null=True)
    created_at = serializers.DateTimeField(read_only=True)
    finished_at = serializers.DateTimeField(read_only=True, allow_null=True)
    reason = serializers.CharField(read_only=True)


class ReleaseCreateSerializer(StrictSerializer):
    version = serializers.IntegerField(min_value=1, help_text="The saved version to make live.")
    strategy = serializers.ChoiceField(choices=ReleaseStrategy.choices, default=ReleaseStrategy.DIRECT)
    changelog = serializers.CharField(max_length=10_000, help_text="What changes for live users.")
    steps = serializers.JSONField(
        required=False, help_text='[{"weight": 5, "hold": "1h"}, …, {"weight": 100}]; defaults by strategy.'
    )
    analysis = serializers.JSONField(
        required=False,
        help_text='{"interval","min_samples","max_error_rate_increase","max_latency_increase",'
        '"max_rating_drop","max_safety_violations","inconclusive_limit","min_ratings"}',
    )
    keep_warm = serializers.CharField(
        required=False, allow_null=True, max_length=20, help_text='e.g. "24h" (default).'
    )
    smoke = serializers.JSONField(
        required=False,
        allow_null=True,
        help_text='blue_green only: {"suite": "<id>"} or {"turns": [{"user","expect"}]}.',
    )
    override_freeze = override_freeze_field()

    class Meta:
        output = ReleaseSerializer


class ReasonSerializer(StrictSerializer):
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class RollbackSerializer(ReasonSerializer):
    safety = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Rolled back for a safety violation: the candidate's open conversations move to stable.",
    )


class ReleaseViewSet(AgentChildMixin, OrgScopedViewSet):
    """Who made which version live, when and why; a manager of the agent's stage releases."""

    model = Release
    # Rows are reached through their agent, whose visibility (stage role or grant) the
    # parent lookup already decides; a stage filter here would hide granted agents' rows.
    stage_field = None
    serializer_class = ReleaseSerializer
    # Reading the history takes what reading the agent takes; the service requires the
    # manager role of the agent's stage to release (403 otherwise, audited).
    rules = {
        "list": VIEW,
        "retrieve": VIEW,
        "create": ObjectAction("manage"),
        "advance": ObjectAction("manage"),
        "pause": ObjectAction("manage"),
        "resume": ObjectAction("manage"),
        "rollback": ObjectAction("manage"),
    }
    schema_error_codes = {"POST": (409, 423)}

    def refine_queryset(self, queryset):
        verdicts = ReleaseVerdict.objects.for_org(self.org).order_by("at", "id")
        return (
            queryset.select_related("created_by")
            .prefetch_related(Prefetch("verdicts", queryset=verdicts, to_attr="verdict_list"))
            .order_by("-created_at")
        )

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
        return Response(self.represent(self._fresh(made)), status=status.HTTP_201_CREATED)

    def _fresh(self, release: Release) -> Release:
        return self.get_queryset().get(pk=release.pk)

    def _act(self, service, serializer=ReasonSerializer):
        data = serializer(data=self.request.data)
        data.is_valid(raise_exception=True)
        release = service(access=self.access, release=self.get_object(), **data.validated_data)
        return Response(self.represent(self._fresh(release)))

    @extend_schema(request=ReasonSerializer, responses={200: ReleaseSerializer})
    @action(detail=True, methods=["post"])
    def advance(self, request, org, agent_id, pk):
        """One step on now (a manual release: the approval, by another manager, to 100 %)."""
        return self._act(release_advance)

    @extend_schema(request=ReasonSerializer, responses={200: ReleaseSerializer})
    @action(detail=True, methods=["post"])
    def pause(self, request, org, agent_id, pk):
        """Keep splitting at this weight, but stop advancing (an A/B experiment)."""
        return self._act(release_pause)

    @extend_schema(request=ReasonSerializer, responses={200: ReleaseSerializer})
    @action(detail=True, methods=["post"])
    def resume(self, request, org, agent_id, pk):
        return self._act(release_resume)

    @extend_schema(request=RollbackSerializer, responses={200: ReleaseSerializer})
    @action(detail=True, methods=["post"])
    def rollback(self, request, org, agent_id, pk):
        """Instant, without analysis: 0 % on the candidate (or, while warm, undo a success)."""
        return self._act(release_rollback, RollbackSerializer)
