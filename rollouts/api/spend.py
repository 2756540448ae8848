"""GET …/stages/{slug}/spend/?month=YYYY-MM: a stage's conversation costs against its budget."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from accounts.models import Stage
from lifecycle.api import OrgScopedAPIView

from ..models import StagePolicy
from ..spending import stage_spend
from .policy import StageRole


class AgentRefSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()


class AgentSpendSerializer(serializers.Serializer):
    agent = AgentRefSerializer()
    archived = serializers.BooleanField()
    spent = serializers.CharField(help_text="A decimal amount with cents.")
    share = serializers.FloatField(help_text="Of the stage's spend this month, 0 to 1.")
    conversations = serializers.IntegerField()
    by_source = serializers.DictField(child=serializers.CharField())


class StageSpendSerializer(serializers.Serializer):
    stage = serializers.CharField()
    month = serializers.CharField(help_text='"YYYY-MM", a calendar month in UTC.')
    budget = serializers.CharField(allow_null=True, help_text="null: the stage has no budget.")
    spent = serializers.CharField()
    ratio = serializers.FloatField(allow_null=True, help_text="spent / budget; null without a budget.")
    alert_at = serializers.FloatField()
    block = serializers.ListField(child=serializers.CharField())
    exhausted = serializers.BooleanField()
    by_source = serializers.DictField(child=serializers.CharField())
    by_agent = AgentSpendSerializer(many=True)


class StageSpendView(OrgScopedAPIView):
    """The month's spend of one stage, for anyone with a role in it."""

    model = StagePolicy
    stage_field = "stage"
    parent_model = Stage
    parent_lookup_field = "slug"
    parent_url_kwarg = "stage_slug"
    parent_field = "stage"
    parent_stage_field = None
    rules = {"get": StageRole()}

    @extend_schema(
        parameters=[OpenApiParameter("month", str, description='"YYYY-MM" (UTC); default this month.')],
        responses={200: StageSpendSerializer},
    )
    def get(self, request, org, stage_slug):
        return Response(stage_spend(self.get_parent(), request.query_params.get("month")))
