from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.models import Stage
from agents.api.views import VIEW, AgentChildMixin
from lifecycle.api import Member, OrgAdmin, OrgScopedAPIView, OrgScopedViewSet
from lifecycle.endpoints import OperationAcceptedSerializer, operation_accepted
from lifecycle.idempotency import carries_secret
from lifecycle.operations import Operation

from ..models import Backport, StageKey
from ..selectors import backports_visible, lineage_drift
from ..services.backport import (
    backport_apply,
    backport_decline,
    backport_options,
    backport_preview,
    backport_propose,
)
from ..services.keys import stage_key_create, stage_key_revoke
from ..services.promotion import agent_promote
from ..services.pull import pull_preview, pull_preview_csv, pull_request
from . import serializers as s


class PromoteView(AgentChildMixin, OrgScopedAPIView):
    """Promote the agent into the next stage: an exact clone, made by an operation."""

    stage_field = None  # the parent agent's stage decides
    rules = {"post": VIEW}
    schema_error_codes = {"POST": (409, 423, 428)}

    @extend_schema(request=s.PromoteSerializer, responses={202: OperationAcceptedSerializer})
    def post(self, request, org, agent_id):
        data = s.PromoteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        operation = agent_promote(access=self.access, agent=self.get_parent(), **data.validated_data)
        return operation_accepted(operation)


class PullView(AgentChildMixin, OrgScopedAPIView):
    """Pull updates from the previous stage: preview (GET, CSV too) and apply (POST)."""

    stage_field = None  # the parent agent's stage decides
    rules = {"get": VIEW, "post": VIEW}
    schema_error_codes = {"GET": (409,), "POST": (409, 423, 428)}

    @extend_schema(
        parameters=[OpenApiParameter("format", str, enum=["json", "csv"])],
        responses={
            200: s.PullPreviewSerializer,
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="CSV with a header row"),
        },
    )
    def get(self, request, org, agent_id):
        agent = self.get_parent()
        preview = pull_preview(access=self.access, agent=agent)
        if request.query_params.get("format") == "csv":
            response = HttpResponse(pull_preview_csv(preview), content_type="text/csv")
            response["Content-Disposition"] = (
                f'attachment; filename="pull-{agent.lineage.slug}-{agent.stage.slug}.csv"'
            )
            return response
        return Response(preview)

    @extend_schema(request=s.PullApplySerializer, responses={202: OperationAcceptedSerializer})
    def post(self, request, org, agent_id):
        data = s.PullApplySerializer(data=request.data)
        data.is_valid(raise_exception=True)
        operation = pull_request(access=self.access, agent=self.get_parent(), **data.validated_data)
        return operation_accepted(operation)


class BackportProposeView(AgentChildMixin, OrgScopedAPIView):
    """This stage's local changes (GET), and proposing some for the first stage (POST)."""

    stage_field = None  # the parent agent's stage decides
    rules = {"get": VIEW, "post": VIEW}
    schema_error_codes = {"GET": (409,), "POST": (409,)}

    @extend_schema(responses={200: s.BackportOptionsSerializer})
    def get(self, request, org, agent_id):
        return Response(backport_options(access=self.access, agent=self.get_parent()))

    @extend_schema(request=s.BackportProposeSerializer, responses={201: s.BackportSerializer})
    def post(self, request, org, agent_id):
        data = s.BackportProposeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        backport = backport_propose(access=self.access, agent=self.get_parent(), **data.validated_data)
        return Response(s.BackportSerializer(backport).data, status=201)


class BackportViewSet(OrgScopedViewSet):
    """Back-port proposals: an editor of the first stage applies or declines them."""

    model = Backport
    stage_field = None  # either end's agent may see it: backports_visible() in refine_queryset
    serializer_class = s.BackportSerializer
    rules = {"list": Member(), "retrieve": Member(), "apply": Member(), "decline": Member()}
    schema_error_codes = {"POST": (409, 423)}

    def refine_queryset(self, queryset):
        queryset = backports_visible(self.access, queryset)
        status = self.request.query_params.get("status")
        return queryset.filter(status=status) if status else queryset

    @extend_schema(parameters=[OpenApiParameter("status", str, enum=["open", "applied", "declined"])])
    def list(self, request, org):
        return self.paginated(self.get_queryset(), s.BackportSerializer)

    @extend_schema(responses={200: s.BackportDetailSerializer})
    def retrieve(self, request, org, pk):
        backport = self.get_object()
        return Response({**self.represent(backport), "preview": backport_preview(backport)})

    @extend_schema(
        request=s.BackportApplySerializer,
        responses={200: s.BackportSerializer, 202: OperationAcceptedSerializer},
    )
    @action(detail=True, methods=["post"])
    def apply(self, request, org, pk):
        data = s.BackportApplySerializer(data=request.data)
        data.is_valid(raise_exception=True)
        applied = backport_apply(access=self.access, backport=self.get_object(), **data.validated_data)
        if isinstance(applied, Operation):  # the first stage asks for approvals first
            return operation_accepted(applied)
        return Response(self.represent(applied))

    @extend_schema(request=s.DeclineSerializer, responses={200: s.BackportSerializer})
    @action(detail=True, methods=["post"])
    def decline(self, request, org, pk):
        data = s.DeclineSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        backport = backport_decline(access=self.access, backport=self.get_object(), **data.validated_data)
        return Response(self.represent(backport))


class StageKeyViewSet(OrgScopedViewSet):
    """A stage's API keys for the gateway (owners and admins)."""

    model = StageKey
    stage_field = None  # under its stage, the parent
    parent_model = Stage
    parent_lookup_field = "slug"
    parent_url_kwarg = "stage_slug"
    parent_field = "stage"
    parent_stage_field = None
    serializer_class = s.StageKeySerializer
    rules = {"list": OrgAdmin(), "create": OrgAdmin(), "retrieve": OrgAdmin(), "destroy": OrgAdmin()}

    def refine_queryset(self, queryset):
        return queryset.select_related("stage", "created_by").order_by("-created_at")

    def list(self, request, org, stage_slug):
        return self.paginated(self.get_queryset(), s.StageKeySerializer)

    def retrieve(self, request, org, stage_slug, pk):
        return Response(self.represent(self.get_object()))

    @extend_schema(request=s.StageKeyCreateSerializer, responses={201: s.StageKeyIssuedSerializer})
    def create(self, request, org, stage_slug):
        data = s.StageKeyCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        key, raw = stage_key_create(access=self.access, stage=self.get_parent(), **data.validated_data)
        return carries_secret(Response({**self.represent(key), "key": raw}, status=201))

    @extend_schema(request=None, responses={204: None})
    def destroy(self, request, org, stage_slug, pk):
        stage_key_revoke(access=self.access, key=self.get_object())
        return Response(status=204)


class DriftView(OrgScopedAPIView):
    """One lineage across all stages: what differs between each pair of adjacent stages."""

    stage_field = None  # lineage_drift() shows only the stages the caller can see
    rules = {"get": Member()}

    @extend_schema(responses={200: s.DriftSerializer})
    def get(self, request, org, lineage):
        return Response(lineage_drift(access=self.access, lineage_slug=lineage))
