from django.db.models import Prefetch
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.decorators import action
from rest_framework.response import Response

from lifecycle.api import Member, OrgScopedViewSet
from lifecycle.errors import Invalid
from lifecycle.etags import etag_of

from ..evidence import approval_evidence
from ..models import ApprovalDecision, ApprovalRequest, ApprovalStatus
from ..selectors import approvals_to_review, approvals_visible
from ..services.approval import approval_cancel, approval_decide
from . import serializers as s


class ApprovalViewSet(OrgScopedViewSet):
    """Change approval requests: the inbox, the evidence packet, and the decisions."""

    model = ApprovalRequest
    stage_field = None  # approvals_visible(): the target stage's roles, or the requester
    serializer_class = s.ApprovalRequestSerializer
    # Who may decide is the service's question (the requester, a non-manager → 403).
    rules = {
        "list": Member(),
        "retrieve": Member(),
        "approve": Member(),
        "reject": Member(),
        "cancel": Member(),
    }
    schema_error_codes = {"POST": (409,)}

    def refine_queryset(self, queryset):
        decisions = Prefetch(
            "decisions",
            queryset=ApprovalDecision.objects.for_org(self.org).select_related("user").order_by("at", "id"),
        )
        return approvals_visible(self.access, queryset).prefetch_related(decisions)

    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, enum=ApprovalStatus.values),
            OpenApiParameter("mine", str, enum=["to_review"], description="Only what you may decide now."),
        ]
    )
    def list(self, request, org):
        requests = self.get_queryset()
        status, mine = request.query_params.get("status"), request.query_params.get("mine")
        fields = {}
        if status is not None and status not in ApprovalStatus.values:
            fields["status"] = [f"Choose one of: {', '.join(ApprovalStatus.values)}."]
        if mine is not None and mine != "to_review":
            fields["mine"] = ['The only choice is "to_review".']
        if fields:
            raise Invalid(fields=fields)
        if status:
            requests = requests.filter(status=status)
        if mine:
            requests = approvals_to_review(self.access, requests)
        return self.paginated(requests, s.ApprovalRequestSerializer)

    @extend_schema(responses={200: s.ApprovalDetailSerializer})
    def retrieve(self, request, org, pk):
        approval = self.get_object()
        represented = self.represent(approval)
        response = Response({**represented, "evidence": approval_evidence(approval, access=self.access)})
        # The ETag is the request's own state: the evidence moves with the world (the gate's
        # day count, new test runs) and a decision's If-Match is about the request.
        response["ETag"] = etag_of(represented)
        return response

    def _decide(self, request, decision: str):
        data = s.CommentSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        approval = approval_decide(
            access=self.access,
            request=self.get_object(),
            decision=decision,
            comment=data.validated_data["comment"],
            if_match=self.if_match_guard(),
        )
        return Response(self.represent(self._fresh(approval)))

    def _fresh(self, approval):
        return self.get_queryset().get(pk=approval.pk)

    @extend_schema(request=s.CommentSerializer, responses={200: s.ApprovalRequestSerializer})
    @action(detail=True, methods=["post"])
    def approve(self, request, org, pk):
        return self._decide(request, "approve")

    @extend_schema(request=s.CommentSerializer, responses={200: s.ApprovalRequestSerializer})
    @action(detail=True, methods=["post"])
    def reject(self, request, org, pk):
        return self._decide(request, "reject")

    @extend_schema(request=s.CommentSerializer, responses={200: s.ApprovalRequestSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, org, pk):
        data = s.CommentSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        approval = approval_cancel(
            access=self.access, request=self.get_object(), comment=data.validated_data["comment"]
        )
        return Response(self.represent(self._fresh(approval)))
