"""The org's LLM judge (GET/PUT /api/v1/orgs/{org}/evaluation/judge/): owners and admins."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from lifecycle.api import OrgAdmin, OrgScopedAPIView
from lifecycle.serializers import StrictSerializer

from ..models import JudgeSettings
from ..services.judge import KEEP, judge_represent, judge_settings_of, judge_settings_update


class JudgeSettingsSerializer(serializers.Serializer):
    base_url = serializers.URLField(allow_null=True, help_text="OpenAI-compatible base URL, e.g. …/v1")
    model = serializers.CharField(allow_null=True)
    enabled = serializers.BooleanField()
    is_set = serializers.BooleanField(help_text="Whether a key is stored (the key is never returned).")
    updated_at = serializers.DateTimeField(allow_null=True)


class JudgeSettingsWriteSerializer(StrictSerializer):
    base_url = serializers.URLField(max_length=500)
    model = serializers.CharField(max_length=200)
    enabled = serializers.BooleanField(default=True)
    key = serializers.CharField(
        required=False,
        allow_blank=True,
        allow_null=True,
        max_length=1000,
        write_only=True,
        help_text='Write-only. Omit to keep the stored key; "" or null removes it.',
    )

    class Meta:
        output = JudgeSettingsSerializer


class JudgeSettingsView(OrgScopedAPIView):
    """The LLM judge whose scores sit beside the deterministic evaluators' in every run."""

    model = JudgeSettings
    stage_field = None  # one org-wide row
    rules = {"get": OrgAdmin(), "put": OrgAdmin()}

    def represent(self, obj) -> dict:
        return judge_represent(obj)

    @extend_schema(responses={200: JudgeSettingsSerializer})
    def get(self, request, org):
        return Response(judge_represent(judge_settings_of(self.org)))

    @extend_schema(request=JudgeSettingsWriteSerializer, responses={200: JudgeSettingsSerializer})
    def put(self, request, org):
        self.precondition(judge_represent(judge_settings_of(self.org)))
        serializer = JudgeSettingsWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        settings = judge_settings_update(
            access=self.access,
            base_url=data["base_url"],
            model=data["model"],
            enabled=data["enabled"],
            key=data.get("key", KEEP) if "key" in data else KEEP,
            guard=self.if_match_guard(),
        )
        return Response(judge_represent(settings))
