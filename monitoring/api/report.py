"""GET /api/v1/orgs/{org}/agents/{id}/releases/{rid}/report/ (?format=csv for a file)."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from agents.api.views import VIEW, AgentChildMixin
from lifecycle.api import OrgScopedAPIView
from rollouts.models import Release

from ..report import release_report, release_report_csv


class ReportRowSerializer(serializers.Serializer):
    metric = serializers.CharField()
    label = serializers.CharField()
    old = serializers.JSONField(allow_null=True, help_text="The old version's value; null without data.")
    new = serializers.JSONField(allow_null=True)
    change = serializers.FloatField(
        allow_null=True, help_text="new / old - 1; null when old is 0 or missing."
    )
    better = serializers.BooleanField(allow_null=True, help_text="Whether larger is better; null: neither.")


class ReportAlertSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    metric = serializers.CharField()
    level = serializers.CharField()
    version = serializers.IntegerField(allow_null=True)
    value = serializers.CharField()
    threshold = serializers.CharField()
    opened_at = serializers.DateTimeField()
    resolved_at = serializers.DateTimeField(allow_null=True)


class ReportSerializer(serializers.Serializer):
    release = serializers.UUIDField()
    strategy = serializers.CharField()
    old_version = serializers.IntegerField(allow_null=True)
    new_version = serializers.IntegerField()
    finished_at = serializers.DateTimeField()
    until = serializers.DateTimeField()
    complete = serializers.BooleanField(help_text="Whether the 24 hours after the release are over.")
    metrics = ReportRowSerializer(many=True)
    alerts = ReportAlertSerializer(many=True)


class ReleaseReportView(AgentChildMixin, OrgScopedAPIView):
    """The post-deployment report of a succeeded release: the new version's first 24 h
    of live traffic against the old version's, and the alerts in that time."""

    model = Release
    stage_field = None  # reached through the agent, as its releases are
    lookup_url_kwarg = "release_id"
    rules = {"get": VIEW}
    schema_error_codes = {"GET": (409,)}

    @extend_schema(
        parameters=[OpenApiParameter("format", str, enum=["json", "csv"])],
        responses={
            200: ReportSerializer,
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="CSV with a header row"),
        },
    )
    def get(self, request, org, agent_id, release_id):
        release = self.get_object()
        report = release_report(release)
        if request.query_params.get("format") == "csv":
            response = HttpResponse(release_report_csv(report), content_type="text/csv")
            agent = self.get_parent()
            response["Content-Disposition"] = (
                f'attachment; filename="report-{agent.lineage.slug}-v{release.candidate_version}.csv"'
            )
            return response
        return Response(ReportSerializer(report).data)
