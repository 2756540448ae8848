"""A stage's policy (GET/PUT …/stages/{slug}/policy/) and the gate preview of an agent.

The stage endpoints live in accounts, but the policy is rollouts' domain, so its view is
here, routed under the same URL prefix. The serializers below describe the document for
the OpenAPI schema; validation is rollouts.policy's, which names dotted paths.
"""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from accounts.models import Stage
from agents.api.views import VIEW, AgentChildMixin
from lifecycle.api import OrgScopedAPIView, Rule
from lifecycle.errors import Invalid

from ..decision import change_decide
from ..models import StagePolicy
from ..policy import effective_document, stage_policy_update


class StageRole(Rule):
    """Anyone with a role in the stage (org owners and admins hold every stage role)."""

    def allows(self, access, view, obj=None):
        return obj is not None and access.has_stage_role(obj, "viewer")


class GateSerializer(serializers.Serializer):
    min_executions = serializers.IntegerField(allow_null=True, min_value=0)
    min_days = serializers.FloatField(allow_null=True, min_value=0)
    mode = serializers.ChoiceField(["any", "all"])
    count_sources = serializers.ListField(
        child=serializers.ChoiceField(["console", "test_run", "soak", "live"])
    )
    required_suites = serializers.ListField(child=serializers.UUIDField())
    min_accuracy = serializers.FloatField(allow_null=True, min_value=0, max_value=1)
    max_attack_success_rate = serializers.FloatField(allow_null=True, min_value=0, max_value=1)
    require_soak = serializers.BooleanField()
    max_error_rate = serializers.FloatField(allow_null=True, min_value=0, max_value=1)
    max_safety_defect_rate = serializers.FloatField(
        allow_null=True,
        min_value=0,
        max_value=1,
        help_text="Highest defect rate of any safety category, live sample and latest test run.",
    )


class ApprovalGroupSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    members = serializers.ListField(child=serializers.UUIDField(), help_text="User ids (org members).")
    required = serializers.IntegerField(min_value=1, help_text="Approvals needed from the group's members.")


class ApprovalsSerializer(serializers.Serializer):
    required = serializers.IntegerField(min_value=0, max_value=10)
    expires_in_hours = serializers.IntegerField(min_value=1, max_value=720)
    groups = ApprovalGroupSerializer(many=True, required=False)


class FreezeWindowSerializer(serializers.Serializer):
    id = serializers.CharField(required=False, help_text="Generated when missing.")
    kind = serializers.CharField(help_text="weekly | once")
    reason = serializers.CharField(required=False)
    days = serializers.ListField(child=serializers.CharField(), required=False, help_text="weekly: mon…sun")
    start = serializers.CharField(required=False, help_text='weekly: "HH:MM"')
    end_day = serializers.CharField(
        required=False, help_text="weekly: defaults to the start day (the next day when end ≤ start)"
    )
    end = serializers.CharField(required=False, help_text='weekly: "HH:MM"')
    timezone = serializers.CharField(required=False, help_text="weekly: an IANA zone, default UTC")
    starts_at = serializers.DateTimeField(required=False, help_text="once")
    ends_at = serializers.DateTimeField(required=False, help_text="once")


class ReleasesSerializer(serializers.Serializer):
    required = serializers.BooleanField(help_text="Defaults to true for the org's last stage only.")
    default_strategy = serializers.ChoiceField(["direct", "canary", "blue_green", "manual"])


class ActionApprovalsSerializer(serializers.Serializer):
    tools = serializers.ListField(child=serializers.CharField())
    timeout = serializers.CharField(help_text='A duration: "90s", "5m", "2h", "1d".')


class SpendingSerializer(serializers.Serializer):
    monthly_budget = serializers.CharField(allow_null=True, help_text='An amount, e.g. "500.00".')
    alert_at = serializers.FloatField(min_value=0, max_value=1)
    block = serializers.ListField(child=serializers.CharField())


class StagePolicySerializer(serializers.Serializer):
    gate = GateSerializer(required=False)
    approvals = ApprovalsSerializer(required=False)
    freeze_windows = FreezeWindowSerializer(many=True, required=False)
    releases = ReleasesSerializer(required=False)
    action_approvals = ActionApprovalsSerializer(required=False)
    spending = SpendingSerializer(required=False)
    thresholds = serializers.DictField(
        child=serializers.DictField(child=serializers.FloatField()),
        required=False,
        help_text="metric → {warning, critical}",
    )


class StagePolicyView(OrgScopedAPIView):
    """The rules for changes into one stage: read by its members, written by org owners/admins."""

    model = StagePolicy
    stage_field = "stage"
    parent_model = Stage
    parent_lookup_field = "slug"
    parent_url_kwarg = "stage_slug"
    parent_field = "stage"
    parent_stage_field = None
    rules = {"get": StageRole(), "put": StageRole()}

    def represent(self, obj) -> dict:
        return effective_document(self.get_parent())

    @extend_schema(responses={200: StagePolicySerializer})
    def get(self, request, org, stage_slug):
        return Response(effective_document(self.get_parent()))

    @extend_schema(request=StagePolicySerializer, responses={200: StagePolicySerializer})
    def put(self, request, org, stage_slug):
        stage = self.get_parent()
        self.precondition(effective_document(stage))
        return Response(stage_policy_update(access=self.access, stage=stage, document=request.data))


class GateCheckSerializer(serializers.Serializer):
    name = serializers.CharField()
    actual = serializers.JSONField(help_text='A number, or "no data".')
    required = serializers.JSONField()
    passed = serializers.BooleanField()


class GatePreviewSerializer(serializers.Serializer):
    target = serializers.CharField()
    kind = serializers.CharField()
    passed = serializers.BooleanField()
    mode = serializers.CharField()
    checks = GateCheckSerializer(many=True)
    frozen = serializers.JSONField(allow_null=True, help_text='{"id","reason","ends_at"} or null')
    approvals_required = serializers.IntegerField()


class GatePreviewView(AgentChildMixin, OrgScopedAPIView):
    """What the target stage's gate says of this agent now, without changing anything."""

    model = StagePolicy
    stage_field = "stage"
    rules = {"get": VIEW}

    @extend_schema(
        parameters=[OpenApiParameter("target", str, description="A stage slug; default the next stage.")],
        responses={200: GatePreviewSerializer},
    )
    def get(self, request, org, agent_id):
        agent = self.get_parent()
        slug = request.query_params.get("target")
        stages = Stage.objects.for_org(self.org)
        if slug:
            target = stages.filter(slug=slug[:50]).first()
            if target is None:
                raise Invalid(fields={"target": ["No stage with this slug."]})
        else:
            target = stages.filter(position__gt=agent.stage.position).order_by("position").first()
            if target is None:
                raise Invalid(fields={"target": ["This agent is in the last stage: name a target."]})
        kind = "release" if target.pk == agent.stage_id else "promote"
        decision = change_decide(access=self.access, kind=kind, agent=agent, target_stage=target)
        return Response(
            {
                "target": target.slug,
                "kind": kind,
                "passed": decision.gate_passed,
                "mode": decision.gate_mode,
                "checks": list(decision.checks),
                "frozen": decision.freeze["window"] if decision.freeze else None,
                "approvals_required": decision.approvals_required,
            }
        )
