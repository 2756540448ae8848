"""GET /api/v1/orgs/{org}/agents/{id}/metrics/?window=24h&bucket=5m&by=version&source=live."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from agents.api.views import VIEW, AgentChildMixin
from agents.models import ConversationSource
from lifecycle.api import OrgScopedAPIView
from lifecycle.errors import Invalid
from rollouts.policy import DURATION, duration_seconds

from ..metrics import series
from ..models import MetricRollup

MAX_WINDOW = 90 * 86400
MAX_BUCKETS = 1500
BY = ("version", "none")


class MetricsBucketSerializer(serializers.Serializer):
    t = serializers.DateTimeField()
    conversations = serializers.IntegerField()
    turns = serializers.IntegerField(help_text="Agent replies.")
    errors = serializers.IntegerField()
    error_rate = serializers.FloatField(allow_null=True, help_text="errors / turns; null without turns.")
    latency_p50_ms = serializers.IntegerField(allow_null=True)
    latency_p95_ms = serializers.IntegerField(allow_null=True)
    tokens = serializers.IntegerField()
    cost = serializers.DecimalField(max_digits=14, decimal_places=6)
    rating_avg = serializers.FloatField(allow_null=True)


class MetricsSeriesSerializer(serializers.Serializer):
    version = serializers.IntegerField(allow_null=True, help_text="null with by=none.")
    buckets = MetricsBucketSerializer(many=True)


class AgentMetricsSerializer(serializers.Serializer):
    series = MetricsSeriesSerializer(many=True)


def _duration(fields: dict, name: str, raw: str, default: str, *, low: int, high: int) -> int:
    value = raw if raw is not None else default
    if not isinstance(value, str) or not DURATION.match(value):
        fields[name] = ['Expected a duration such as "5m", "1h" or "7d".']
        return 0
    seconds = duration_seconds(value)
    if not low <= seconds <= high or seconds % 60:
        fields[name] = [f"Expected whole minutes from {low // 60}m to {high // 3600}h."]
        return 0
    return seconds


def metrics_params(params) -> dict:
    """The validated query: window and bucket in seconds, per version or not, sources."""
    fields: dict = {}
    window = _duration(fields, "window", params.get("window"), "24h", low=60, high=MAX_WINDOW)
    bucket = _duration(fields, "bucket", params.get("bucket"), "5m", low=60, high=86400)
    by = params.get("by", "version")
    if by not in BY:
        fields["by"] = [f"Expected one of: {', '.join(BY)}."]
    sources = None
    if params.get("source"):
        sources = params.get("source").split(",")
        unknown = [s for s in sources if s not in ConversationSource.values]
        if unknown or len(sources) > len(ConversationSource.values):
            fields["source"] = [
                f"Expected a comma-separated list of: {', '.join(ConversationSource.values)}."
            ]
    if window and bucket and window // bucket > MAX_BUCKETS:
        fields["bucket"] = [f"At most {MAX_BUCKETS} buckets per window: choose a larger bucket."]
    if window and bucket and bucket > window:
        fields["bucket"] = ["A bucket cannot be longer than the window."]
    if fields:
        raise Invalid(fields=fields)
    return {"window": window, "bucket": bucket, "by_version": by == "version", "sources": sources}


class AgentMetricsView(AgentChildMixin, OrgScopedAPIView):
    """The agent's conversations, turns, errors, latency, tokens, cost and ratings in time
    buckets, per version, from the minute rollups (up to a minute behind)."""

    model = MetricRollup
    # Reached through the agent, whose visibility (stage role or grant) the parent lookup
    # decides, as for its releases.
    stage_field = None
    rules = {"get": VIEW}

    @extend_schema(
        parameters=[
            OpenApiParameter("window", str, description='How far back, e.g. "24h" (default), at most 90d.'),
            OpenApiParameter("bucket", str, description='Bucket size in whole minutes, e.g. "5m" (default).'),
            OpenApiParameter(
                "by", str, enum=list(BY), description="One series per version (default) or one."
            ),
            OpenApiParameter(
                "source", str, description="Comma-separated conversation sources (default: all)."
            ),
        ],
        responses={200: AgentMetricsSerializer},
    )
    def get(self, request, org, agent_id):
        agent = self.get_parent()
        query = metrics_params(request.query_params)
        end = timezone.now()
        found = series(
            org_id=self.org.pk,
            agent_id=agent.pk,
            start=end - timedelta(seconds=query["window"]),
            end=end,
            bucket=query["bucket"],
            by_version=query["by_version"],
            sources=query["sources"],
        )
        return Response(AgentMetricsSerializer({"series": found}).data)
