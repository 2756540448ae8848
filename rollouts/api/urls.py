from django.urls import path, re_path
from rest_framework.routers import SimpleRouter

from . import judge, policy, redteam, releases, safety, soak, spend, suites, test_runs, views

AGENT = r"agents/(?P<agent_id>[0-9a-fA-F-]{32,36})"

router = SimpleRouter()
router.register("backports", views.BackportViewSet, basename="backports")
router.register("test-suites", suites.TestSuiteViewSet, basename="test-suites")
router.register(rf"{AGENT}/red-team", redteam.RedTeamViewSet, basename="agent-red-team")
router.register(rf"{AGENT}/releases", releases.ReleaseViewSet, basename="agent-releases")
router.register(rf"{AGENT}/soak-tests", soak.SoakTestViewSet, basename="agent-soak-tests")
router.register(rf"{AGENT}/test-runs", test_runs.TestRunViewSet, basename="agent-test-runs")
router.register(r"stages/(?P<stage_slug>[-a-zA-Z0-9_]+)/keys", views.StageKeyViewSet, basename="stage-keys")

urlpatterns = [
    re_path(rf"^{AGENT}/promote/$", views.PromoteView.as_view(), name="agent-promote"),
    re_path(rf"^{AGENT}/gate/$", policy.GatePreviewView.as_view(), name="agent-gate"),
    re_path(rf"^{AGENT}/safety/$", safety.AgentSafetyView.as_view(), name="agent-safety"),
    re_path(r"^evaluation/judge/$", judge.JudgeSettingsView.as_view(), name="evaluation-judge"),
    re_path(
        r"^stages/(?P<stage_slug>[-a-zA-Z0-9_]+)/policy/$",
        policy.StagePolicyView.as_view(),
        name="stage-policy",
    ),
    re_path(
        r"^stages/(?P<stage_slug>[-a-zA-Z0-9_]+)/spend/$",
        spend.StageSpendView.as_view(),
        name="stage-spend",
    ),
    re_path(
        rf"^{AGENT}/conversations/(?P<pk>[0-9a-fA-F-]{{32,36}})/to-case/$",
        suites.ConversationToCaseView.as_view(),
        name="conversation-to-case",
    ),
    re_path(rf"^{AGENT}/pull/$", views.PullView.as_view(), name="agent-pull"),
    re_path(rf"^{AGENT}/backport/$", views.BackportProposeView.as_view(), name="agent-backport"),
    path("lineages/<slug:lineage>/drift/", views.DriftView.as_view(), name="lineage-drift"),
    *router.urls,
]
