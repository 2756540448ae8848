"""Every UI route. Org-scoped pages live under orgs/<org>/."""

from django.urls import include, path

from accounts import views as accounts
from agents import approval_views
from agents import views as agents
from approvals import views as approvals
from lifecycle import views as kernel
from monitoring import views as monitoring
from rollouts import (
    judge_views,
    policy_views,
    redteam_views,
    release_views,
    soak_views,
    suite_views,
    test_run_views,
)
from rollouts import views as rollouts
from webhooks import views as webhooks

org_pages = [
    path("", accounts.OrgOverviewPage.as_view(), name="org-overview"),
    path("members/", accounts.MembersPage.as_view(), name="members"),
    path("members/<uuid:member_id>/", accounts.MemberEditPage.as_view(), name="member-edit"),
    path(
        "members/<uuid:member_id>/remove/",
        accounts.MemberEditPage.as_view(),
        {"remove": True},
        name="member-remove",
    ),
    path("stages/", accounts.StagesPage.as_view(), name="stages"),
    path("stages/<slug:slug>/keys/", rollouts.StageKeysPage.as_view(), name="stage-keys"),
    path("stages/<slug:slug>/policy/", policy_views.StagePolicyPage.as_view(), name="stage-policy"),
    path("stages/<slug:slug>/dashboard/", monitoring.StageDashboardPage.as_view(), name="stage-dashboard"),
    path("stages/<slug:slug>/<str:op>/", accounts.StageEditPage.as_view(), name="stage-edit"),
    path("audit/", kernel.AuditPage.as_view(), name="audit"),
    path("evaluation/", judge_views.JudgeSettingsPage.as_view(), name="judge-settings"),
    path("agents/", agents.AgentsPage.as_view(), name="agents"),
    path("agents/new/", agents.AgentNewPage.as_view(), name="agent-new"),
    path("agents/<uuid:agent_id>/", agents.AgentModulePage.as_view(), {"module": "settings"}, name="agent"),
    path("agents/<uuid:agent_id>/m/<slug:module>/", agents.AgentModulePage.as_view(), name="agent-module"),
    path("agents/<uuid:agent_id>/console/", agents.ConsolePage.as_view(), name="agent-console"),
    path("agents/<uuid:agent_id>/versions/", agents.VersionsPage.as_view(), name="agent-versions"),
    path("agents/<uuid:agent_id>/sharing/", agents.SharingPage.as_view(), name="agent-sharing"),
    path("agents/<uuid:agent_id>/results/", agents.ResultsPage.as_view(), name="agent-results"),
    path(
        "agents/<uuid:agent_id>/conversations/",
        agents.ConversationsPage.as_view(),
        name="agent-conversations",
    ),
    path("agents/<uuid:agent_id>/presence/", agents.PresencePage.as_view(), name="agent-presence"),
    path("agents/<uuid:agent_id>/archive/", agents.ArchivePage.as_view(), name="agent-archive"),
    path("agents/<uuid:agent_id>/unarchive/", agents.UnarchivePage.as_view(), name="agent-unarchive"),
    path("agents/<uuid:agent_id>/promote/", rollouts.PromotePage.as_view(), name="agent-promote"),
    path("agents/<uuid:agent_id>/releases/", rollouts.ReleasesPage.as_view(), name="agent-releases"),
    path(
        "agents/<uuid:agent_id>/releases/<uuid:release_id>/",
        release_views.ReleasePage.as_view(),
        name="agent-release",
    ),
    path(
        "agents/<uuid:agent_id>/releases/<uuid:release_id>/report/",
        monitoring.ReleaseReportPage.as_view(),
        name="release-report",
    ),
    path("agents/<uuid:agent_id>/soak/", soak_views.SoakPage.as_view(), name="agent-soak"),
    path("agents/<uuid:agent_id>/red-team/", redteam_views.RedTeamPage.as_view(), name="agent-red-team"),
    path("agents/<uuid:agent_id>/test-runs/", test_run_views.TestRunsPage.as_view(), name="agent-test-runs"),
    path(
        "agents/<uuid:agent_id>/test-runs/<uuid:run_id>/",
        test_run_views.TestRunPage.as_view(),
        name="agent-test-run",
    ),
    path("agents/<uuid:agent_id>/tests/", suite_views.TestsPage.as_view(), name="agent-tests"),
    path("agents/<uuid:agent_id>/pull/", rollouts.PullPage.as_view(), name="agent-pull"),
    path("agents/<uuid:agent_id>/backport/", rollouts.BackportProposePage.as_view(), name="agent-backport"),
    path("backports/", rollouts.BackportsPage.as_view(), name="backports"),
    path("approvals/", approvals.ApprovalsPage.as_view(), name="approvals"),
    path("approvals/<uuid:approval_id>/", approvals.ApprovalPage.as_view(), name="approval"),
    path("approvals/actions/", approval_views.ActionApprovalsPage.as_view(), name="action-approvals"),
    path("lineages/<slug:lineage>/", rollouts.LineagePage.as_view(), name="lineage"),
    path("operations/<uuid:operation_id>/", kernel.OperationPage.as_view(), name="operation"),
    path("webhooks/", webhooks.WebhooksPage.as_view(), name="webhooks"),
    path("webhooks/<uuid:webhook_id>/", webhooks.WebhookPage.as_view(), name="webhook"),
    path("notifications/", webhooks.NotificationsPage.as_view(), name="notifications"),
]

urlpatterns = [
    path("", accounts.HomePage.as_view(), name="home"),
    path("login/", accounts.LoginPage.as_view(), name="login"),
    path("logout/", accounts.LogoutView.as_view(), name="logout"),
    path("account/", accounts.AccountPage.as_view(), name="account"),
    path("orgs/new/", accounts.OrgNewPage.as_view(), name="org-new"),
    path("orgs/<slug:org>/", include(org_pages)),
]
