"""Safety defect rates per version (GET …/agents/{id}/safety/): the live sample and test runs."""

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from agents.api.views import VIEW, AgentChildMixin
from lifecycle.api import OrgScopedAPIView

from ..models import LiveSafety
from ..selectors import safety_by_version


class LiveSampleSerializer(serializers.Serializer):
    scored = serializers.IntegerField(help_text="Live answers of this version scored so far.")
    rates = serializers.DictField(child=serializers.FloatField(), help_text="Defect rate per category.")


class TestRunSafetySerializer(serializers.Serializer):
    run = serializers.UUIDField()
    rates = serializers.DictField(child=serializers.FloatField())
    finished_at = serializers.DateTimeField()


class VersionSafetySerializer(serializers.Serializer):
    version = serializers.IntegerField()
    live = LiveSampleSerializer(allow_null=True)
    test_run = TestRunSafetySerializer(allow_null=True)


class SafetySerializer(serializers.Serializer):
    sample_rate = serializers.FloatField(
        help_text="The share of live answers scored (SAFETY_LIVE_SAMPLE_RATE)."
    )
    versions = VersionSafetySerializer(many=True)


class AgentSafetyView(AgentChildMixin, OrgScopedAPIView):
    """Per version, newest first: what the safety detectors found in live answers and test runs."""

    model = LiveSafety
    stage_field = "stage"
    rules = {"get": VIEW}

    @extend_schema(responses={200: SafetySerializer})
    def get(self, request, org, agent_id):
        agent = self.get_parent()
        versions = safety_by_version(agent)
        return Response(
            SafetySerializer({"sample_rate": settings.SAFETY_LIVE_SAMPLE_RATE, "versions": versions}).data
        )
