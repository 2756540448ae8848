"""Test suites and cases: /api/v1/orgs/{org}/test-suites/… and a conversation's to-case."""

from __future__ import annotations

import csv
import io

from django.db.models import Count
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from agents.api.views import VIEW, AgentChildMixin
from agents.models import Conversation
from lifecycle.api import Member, OrgScopedAPIView, OrgScopedViewSet
from lifecycle.csvsafe import csv_row
from lifecycle.errors import NotFound
from lifecycle.serializers import StrictSerializer, UserRefSerializer

from ..models import TestCase, TestSuite
from ..selectors import suites_visible
from ..services import suites as svc


class TestCaseSerializer(serializers.Serializer):
    __test__ = False

    id = serializers.UUIDField(read_only=True)
    suite = serializers.UUIDField(source="suite_id", read_only=True)
    name = serializers.CharField(read_only=True)
    variables = serializers.JSONField(read_only=True)
    turns = serializers.JSONField(read_only=True, help_text='[{"user": "…", "expect": [{"type": …}]}]')
    position = serializers.IntegerField(read_only=True)
    source_conversation = serializers.UUIDField(
        source="source_conversation_id", read_only=True, allow_null=True
    )
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)


class TestSuiteSerializer(serializers.Serializer):
    __test__ = False

    id = serializers.UUIDField(read_only=True)
    lineage = serializers.CharField(source="lineage.slug", read_only=True)
    name = serializers.CharField(read_only=True)
    description = serializers.CharField(read_only=True)
    case_count = serializers.SerializerMethodField()
    created_by = UserRefSerializer(read_only=True, allow_null=True)
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)

    def get_case_count(self, suite) -> int:
        counted = getattr(suite, "case_total", None)  # annotated on lists: no query per suite
        if counted is not None:
            return counted
        return TestCase.objects.for_org(suite.org_id).filter(suite=suite).count()


class SuiteCreateSerializer(StrictSerializer):
    lineage = serializers.CharField(help_text="The lineage slug of the agent the suite tests.")
    name = serializers.CharField(max_length=120)
    description = serializers.CharField(max_length=5000, required=False, allow_blank=True, default="")

    class Meta:
        output = TestSuiteSerializer


class SuiteUpdateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=120, required=False)
    description = serializers.CharField(max_length=5000, required=False, allow_blank=True)

    class Meta:
        output = TestSuiteSerializer


class CaseWriteSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200, required=False)
    variables = serializers.JSONField(required=False)
    # Validated by rollouts.suite_schema, which names the exact path of each error.
    turns = serializers.JSONField(required=False, help_text='1-50 of {"user": "…", "expect": [{"type": …}]}')

    class Meta:
        output = TestCaseSerializer


class SuiteImportSerializer(StrictSerializer):
    lineage = serializers.CharField()
    document = serializers.JSONField(
        required=False,
        help_text='What export returns: {"format_version","name","description","cases"}',
    )
    csv = serializers.CharField(
        required=False,
        trim_whitespace=False,
        max_length=2_000_000,
        help_text="Instead of document: what export?format=csv returns (case, turn, user, expectation).",
    )
    name = serializers.CharField(required=False, allow_blank=True, help_text="The suite's name, with csv.")
    description = serializers.CharField(required=False, allow_blank=True, help_text="With csv.")

    def validate(self, attrs):
        if ("document" in attrs) == ("csv" in attrs):
            raise serializers.ValidationError({"document": ["Give either document or csv."]})
        if "document" in attrs and ("name" in attrs or "description" in attrs):
            raise serializers.ValidationError({"name": ["The document names its suite; name goes with csv."]})
        if "csv" in attrs and "name" not in attrs:
            raise serializers.ValidationError({"name": ["Name the suite the CSV's cases go into."]})
        return attrs


class SuiteExportSerializer(serializers.Serializer):
    format_version = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    cases = serializers.JSONField()


class ToCaseSerializer(StrictSerializer):
    suite = serializers.UUIDField()
    name = serializers.CharField(max_length=200, required=False)


class TestSuiteViewSet(OrgScopedViewSet):
    """A lineage's regression suites and their cases. Reading takes seeing an agent of the
    lineage (suites_visible); writing is decided by the services (403 for viewers)."""

    __test__ = False

    model = TestSuite
    # Suites belong to a lineage, not a stage: suites_visible() narrows them to lineages
    # with an agent the caller can see, so a stage filter does not apply.
    stage_field = None
    serializer_class = TestSuiteSerializer
    lookup_value_regex = r"[0-9a-fA-F-]{32,36}"
    rules = {
        "list": Member(),
        "create": Member(),
        "retrieve": Member(),
        "partial_update": Member(),
        "destroy": Member(),
        "cases": Member(),
        "case_detail": Member(),
        "export": Member(),
        "import_suite": Member(),
    }

    def represent(self, obj) -> dict:
        # Under …/cases/{cid}/ the ETag and If-Match are the case's, not its suite's.
        if getattr(self, "action", None) == "case_detail":
            return TestCaseSerializer(self._case(obj, self.kwargs.get("cid"))).data
        return super().represent(obj)

    def refine_queryset(self, queryset):
        queryset = suites_visible(self.access, queryset).annotate(case_total=Count("cases"))
        lineage = self.request.query_params.get("lineage")
        return queryset.filter(lineage__slug=lineage) if lineage else queryset

    @extend_schema(parameters=[OpenApiParameter("lineage", str, description="A lineage slug")])
    def list(self, request, org):
        return self.paginated(self.get_queryset(), TestSuiteSerializer)

    def retrieve(self, request, org, pk):
        return Response(self.represent(self.get_object()))

    @extend_schema(request=SuiteCreateSerializer, responses={201: TestSuiteSerializer})
    def create(self, request, org):
        data = SuiteCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        lineage = svc.lineage_for(self.access, values.pop("lineage"))
        suite = svc.suite_create(access=self.access, lineage=lineage, **values)
        return Response(self.represent(suite), status=status.HTTP_201_CREATED)

    @extend_schema(request=SuiteUpdateSerializer, responses={200: TestSuiteSerializer})
    def partial_update(self, request, org, pk):
        data = SuiteUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        suite = svc.suite_update(access=self.access, suite=self.get_object(), **data.validated_data)
        return Response(self.represent(suite))

    @extend_schema(responses={204: None})
    def destroy(self, request, org, pk):
        svc.suite_archive(access=self.access, suite=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    # --- cases, nested: reached through a visible suite --------------------------------
    @extend_schema(
        methods=["GET"], responses={200: TestCaseSerializer(many=True)}, summary="The suite's cases"
    )
    @extend_schema(methods=["POST"], request=CaseWriteSerializer, responses={201: TestCaseSerializer})
    @action(detail=True, methods=["get", "post"])
    def cases(self, request, org, pk):
        suite = self.get_object()
        if request.method == "GET":
            return self.paginated(TestCase.objects.for_org(self.org).filter(suite=suite), TestCaseSerializer)
        data = CaseWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        case = svc.case_create(
            access=self.access,
            suite=suite,
            name=values.get("name"),
            turns=values.get("turns"),
            variables=values.get("variables"),
        )
        return Response(TestCaseSerializer(case).data, status=status.HTTP_201_CREATED)

    def _case(self, suite, cid) -> TestCase:
        try:
            case = (
                TestCase.objects.for_org(self.org).filter(suite=suite, pk=cid).select_related("suite").first()
            )
        except (ValueError, TypeError):
            case = None
        if case is None:
            raise NotFound()
        return case

    @extend_schema(methods=["GET"], responses={200: TestCaseSerializer})
    @extend_schema(methods=["PATCH"], request=CaseWriteSerializer, responses={200: TestCaseSerializer})
    @extend_schema(methods=["DELETE"], responses={204: None})
    @action(detail=True, methods=["get", "patch", "delete"], url_path=r"cases/(?P<cid>[0-9a-fA-F-]{32,36})")
    def case_detail(self, request, org, pk, cid):
        case = self._case(self.get_object(), cid)  # If-Match was checked against the case
        if request.method == "GET":
            return Response(TestCaseSerializer(case).data)
        if request.method == "DELETE":
            svc.case_delete(access=self.access, case=case)
            return Response(status=status.HTTP_204_NO_CONTENT)
        data = CaseWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        case = svc.case_update(access=self.access, case=case, **data.validated_data)
        return Response(TestCaseSerializer(case).data)

    # --- import / export -----------------------------------------------------------------
    @extend_schema(
        parameters=[OpenApiParameter("format", str, enum=["json", "csv"])],
        responses={
            200: SuiteExportSerializer,
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.STR, description="case, turn, user, expectation (JSON): one row per expectation"
            ),
        },
    )
    @action(detail=True, methods=["get"])
    def export(self, request, org, pk):
        suite = self.get_object()
        if request.query_params.get("format") == "csv":
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            for row in svc.suite_export_rows(suite):
                writer.writerow(csv_row(row))  # formulas neutralized
            response = HttpResponse(buffer.getvalue(), content_type="text/csv")
            response["Content-Disposition"] = f'attachment; filename="suite-{suite.lineage.slug}.csv"'
            return response
        return Response(svc.suite_export(suite))

    @extend_schema(request=SuiteImportSerializer, responses={201: TestSuiteSerializer})
    @action(detail=False, methods=["post"], url_path="import")
    def import_suite(self, request, org):
        data = SuiteImportSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        lineage = svc.lineage_for(self.access, values["lineage"])
        if "csv" in values:
            suite = svc.suite_import_csv(
                access=self.access,
                lineage=lineage,
                name=values["name"],
                description=values.get("description", ""),
                text=values["csv"],
            )
        else:
            suite = svc.suite_import(access=self.access, lineage=lineage, document=values["document"])
        return Response(self.represent(suite), status=status.HTTP_201_CREATED)


class ConversationToCaseView(AgentChildMixin, OrgScopedAPIView):
    """One click from a stored conversation (console, test result, live) to a regression case."""

    # The conversation is the object, looked up among its agent's (another agent's is missing).
    model = Conversation
    stage_field = None  # the parent agent's stage decides
    # Seeing the agent is enough to reach the conversation; the service decides who may
    # write to the suite (403 otherwise).
    rules = {"post": VIEW}

    def represent(self, obj) -> dict:
        return {"id": str(obj.pk)}

    @extend_schema(request=ToCaseSerializer, responses={201: TestCaseSerializer})
    def post(self, request, org, agent_id, pk):
        data = ToCaseSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        case = svc.case_from_conversation(
            access=self.access,
            agent=self.get_parent(),
            conversation_id=self.get_object().pk,
            suite_id=data.validated_data["suite"],
            name=data.validated_data.get("name"),
        )
        return Response(TestCaseSerializer(case).data, status=status.HTTP_201_CREATED)
