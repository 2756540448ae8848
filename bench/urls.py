"""The project's URLs plus a bare DRF view: the gateway benchmark's baseline."""

from django.urls import include, path
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Stage


class OneIndexedRead(APIView):
    """A bare DRF view doing one indexed read (a stage by org and slug)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    def get(self, request, org_id):
        stage = Stage.objects.for_org(org_id).filter(slug="development").values("slug", "name").first()
        return Response(stage)


urlpatterns = [
    path("bench/read/<uuid:org_id>/", OneIndexedRead.as_view()),
    path("", include("lifecycle.urls")),
]
