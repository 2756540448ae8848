"""The kernel's own endpoints: operations and the audit log."""

from django.http import HttpResponse, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from .api import Member, OrgAdmin, OrgScopedViewSet, Requester
from .audit import AuditEvent, audit_visible_to
from .audit_export import FILTERS, OperationArtifact, audit_csv_stream, audit_export_start, audit_filtered
from .errors import NotFound
from .operations import (
    Operation,
    operation_cancel,
    operation_children,
    operation_live_progress,
    operations_visible_to,
)
from .serializers import StrictSerializer, UserRefSerializer


class OperationSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    kind = serializers.CharField(read_only=True)
    status = serializers.CharField(read_only=True)
    progress = serializers.SerializerMethodField()
    result = serializers.JSONField(read_only=True)
    error = serializers.JSONField(read_only=True, allow_null=True)
    stage = serializers.SerializerMethodField()
    requested_by = UserRefSerializer(read_only=True, allow_null=True)
    target = serializers.SerializerMethodField()
    attempts = serializers.IntegerField(read_only=True)
    parent = serializers.UUIDField(source="parent_id", read_only=True, allow_null=True)
    cancel_requested_at = serializers.DateTimeField(read_only=True, allow_null=True)
    created_at = serializers.DateTimeField(read_only=True)
    started_at = serializers.DateTimeField(read_only=True, allow_null=True)
    finished_at = serializers.DateTimeField(read_only=True, allow_null=True)

    def get_progress(self, operation) -> int:
        return operation_live_progress(operation)

    def get_stage(self, operation) -> str | None:
        return operation.stage.slug if operation.stage_id else None

    def get_target(self, operation) -> dict | None:
        if not operation.target_type:
            return None
        return {"type": operation.target_type, "id": operation.target_id}


class OperationChildSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    kind = serializers.CharField(read_only=True)
    status = serializers.CharField(read_only=True)
    progress = serializers.SerializerMethodField()

    def get_progress(self, operation) -> int:
        return operation_live_progress(operation)


class OperationDetailSerializer(OperationSerializer):
    """One operation, with its children (lists leave them out: one query per row)."""

    children = serializers.SerializerMethodField()

    @extend_schema_field(OperationChildSerializer(many=True))
    def get_children(self, operation) -> list:
        return OperationChildSerializer(operation_children(operation), many=True).data


def operation_accepted(operation: Operation) -> Response:
    """The 202 every long-running endpoint answers with."""
    return Response({"operation": OperationSerializer(operation).data}, status=status.HTTP_202_ACCEPTED)


class OperationAcceptedSerializer(serializers.Serializer):
    operation = OperationSerializer()


class OperationViewSet(OrgScopedViewSet):
    """Background work: poll an operation for its status, progress and result."""

    model = Operation
    stage_field = None
    serializer_class = OperationDetailSerializer
    rules = {
        "list": Member(),
        "retrieve": Member(),
        "cancel": Requester() | OrgAdmin(),
        "download": Member(),
    }

    def refine_queryset(self, queryset):
        queryset = operations_visible_to(self.access, queryset)
        for name in ("status", "kind"):
            value = self.request.query_params.get(name)
            if value:
                queryset = queryset.filter(**{name: value})
        return queryset

    @extend_schema(
        parameters=[OpenApiParameter("status", str), OpenApiParameter("kind", str)],
    )
    def list(self, request, org):
        return self.paginated(self.get_queryset(), OperationSerializer)

    def retrieve(self, request, org, pk):
        return Response(self.represent(self.get_object()))

    @extend_schema(
        request=None,
        responses={200: OperationDetailSerializer},
        description=(
            "The requester or an org admin; 409 once the operation has finished. Queued or waiting "
            "work is cancelled at once; running work gets `cancel_requested_at` and ends `cancelled` "
            "at its next checkpoint, its changes rolled back. Children are cancelled with their parent."
        ),
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, org, pk):
        operation = operation_cancel(actor=request.user, operation=self.get_object())
        return Response(self.represent(operation))

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"])
    def download(self, request, org, pk):
        operation = self.get_object()
        artifact = OperationArtifact.objects.for_org(self.org).filter(operation=operation).first()
        if artifact is None:
            raise NotFound()
        response = HttpResponse(bytes(artifact.content), content_type=artifact.content_type)
        response["Content-Disposition"] = f'attachment; filename="{artifact.filename}"'
        return response


class AuditEventSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    actor = serializers.SerializerMethodField()
    action = serializers.CharField(read_only=True)
    target = serializers.SerializerMethodField()
    changes = serializers.JSONField(read_only=True)
    request_id = serializers.CharField(read_only=True)
    ip = serializers.IPAddressField(read_only=True, allow_null=True)

    def get_actor(self, event) -> dict | None:
        if event.actor_id is None:
            return None
        return {"id": str(event.actor_id), "email": event.actor_email}

    def get_target(self, event) -> dict:
        return {"type": event.target_type, "id": event.target_id, "repr": event.target_repr}


class AuditExportSerializer(StrictSerializer):
    actor = serializers.CharField(required=False, allow_blank=True, max_length=254)
    action = serializers.CharField(required=False, allow_blank=True, max_length=64)
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)
    target_type = serializers.CharField(required=False, allow_blank=True, max_length=64)
    target_id = serializers.CharField(required=False, allow_blank=True, max_length=64)


AUDIT_FILTER_PARAMS = [
    OpenApiParameter("actor", str, description="Email or user id."),
    OpenApiParameter("action", str, description="Exact action, or a prefix ending in '*'."),
    OpenApiParameter("since", OpenApiTypes.DATETIME),
    OpenApiParameter("until", OpenApiTypes.DATETIME),
    OpenApiParameter("target_type", str),
    OpenApiParameter("target_id", str),
    OpenApiParameter("format", str, enum=["json", "csv"]),
]


class AuditViewSet(OrgScopedViewSet):
    """Who did what, when. Admins read everything; members read their own actions."""

    model = AuditEvent
    stage_field = None
    serializer_class = AuditEventSerializer
    rules = {"list": Member(), "exports": OrgAdmin()}

    def refine_queryset(self, queryset):
        filters = {name: self.request.query_params.get(name) for name in FILTERS}
        return audit_filtered(audit_visible_to(self.access, queryset), filters)

    @extend_schema(
        parameters=AUDIT_FILTER_PARAMS,
        responses={
            200: AuditEventSerializer(many=True),
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="CSV with a header row"),
        },
    )
    def list(self, request, org):
        queryset = self.get_queryset()
        if request.query_params.get("format") == "csv":
            response = StreamingHttpResponse(audit_csv_stream(queryset), content_type="text/csv")
            response["Content-Disposition"] = f'attachment; filename="audit-{self.org.slug}.csv"'
            return response
        return self.paginated(queryset, AuditEventSerializer)

    @extend_schema(request=AuditExportSerializer, responses={202: OperationAcceptedSerializer})
    @action(detail=False, methods=["post"])
    def exports(self, request, org):
        data = AuditExportSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        filters = {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in data.validated_data.items()}
        return operation_accepted(audit_export_start(access=self.access, filters=filters))
