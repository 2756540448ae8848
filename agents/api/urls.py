from rest_framework.routers import SimpleRouter

from . import action_approvals, views

router = SimpleRouter()
router.register("agents", views.AgentViewSet, basename="agents")
router.register("action-approvals", action_approvals.ActionApprovalViewSet, basename="action-approvals")
AGENT = r"agents/(?P<agent_id>[0-9a-fA-F-]{32,36})"
router.register(rf"{AGENT}/components", views.ComponentViewSet, basename="agent-components")
router.register(rf"{AGENT}/versions", views.VersionViewSet, basename="agent-versions")
router.register(rf"{AGENT}/grants", views.GrantViewSet, basename="agent-grants")
router.register(rf"{AGENT}/presence", views.PresenceViewSet, basename="agent-presence")
router.register(rf"{AGENT}/test-results", views.TestResultViewSet, basename="agent-test-results")
router.register(rf"{AGENT}/conversations", views.ConversationViewSet, basename="agent-conversations")

urlpatterns = router.urls
