from django.urls import re_path
from rest_framework.routers import SimpleRouter

from . import metrics, report, views

AGENT = r"agents/(?P<agent_id>[0-9a-fA-F-]{32,36})"

router = SimpleRouter()
router.register("alerts", views.AlertViewSet, basename="alerts")

urlpatterns = [
    re_path(rf"^{AGENT}/metrics/$", metrics.AgentMetricsView.as_view(), name="agent-metrics"),
    re_path(
        rf"^{AGENT}/releases/(?P<release_id>[0-9a-fA-F-]{{32,36}})/report/$",
        report.ReleaseReportView.as_view(),
        name="release-report",
    ),
    *router.urls,
]
