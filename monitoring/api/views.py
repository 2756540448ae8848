"""GET /api/v1/orgs/{org}/alerts/?status=open|resolved&stage=<slug>."""

import re

from drf_spectacular.utils import OpenApiParameter, extend_schema

from accounts.models import Stage
from lifecycle.api import Member, OrgScopedViewSet
from lifecycle.errors import Invalid

from ..models import Alert
from ..selectors import STATUSES
from .serializers import AlertSerializer


class AlertViewSet(OrgScopedViewSet):
    """Alerts of the stages you have a role in, newest first."""

    model = Alert
    stage_field = "stage"
    serializer_class = AlertSerializer
    rules = {"list": Member()}

    def refine_queryset(self, queryset):
        params = self.request.query_params
        status = params.get("status")
        if status is not None and status not in STATUSES:
            raise Invalid(fields={"status": [f"Expected one of: {', '.join(STATUSES)}."]})
        if status == "open":
            queryset = queryset.filter(resolved_at__isnull=True)
        elif status == "resolved":
            queryset = queryset.filter(resolved_at__isnull=False)
        slug = params.get("stage")
        if slug is not None:
            stage = None
            if re.fullmatch(r"[-a-zA-Z0-9_]{1,50}", slug):
                stage = Stage.objects.for_org(self.org).filter(slug=slug).first()
            if stage is None:
                raise Invalid(fields={"stage": ["No stage with this slug."]})
            queryset = queryset.filter(stage=stage)
        return queryset.select_related("stage").order_by("-opened_at", "id")

    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, enum=list(STATUSES)),
            OpenApiParameter("stage", str, description="A stage slug."),
        ]
    )
    def list(self, request, org):
        return self.paginated(self.get_queryset(), AlertSerializer)
