"""Every /api/v1/ route. Org-scoped routes live under orgs/<org>/."""

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from accounts.api import views as accounts
from agents.api import urls as agents_urls
from approvals.api import urls as approvals_urls
from lifecycle.endpoints import AuditViewSet, OperationViewSet
from lifecycle.errors import api_not_found
from monitoring.api import urls as monitoring_urls
from rollouts.api import gateway_urls
from rollouts.api import urls as rollouts_urls
from webhooks import urls as webhooks_urls

app_name = "api"

org_router = SimpleRouter()
org_router.register("members", accounts.MemberViewSet, basename="members")
org_router.register("stages", accounts.StageViewSet, basename="stages")
org_router.register("operations", OperationViewSet, basename="operations")
org_router.register("audit", AuditViewSet, basename="audit")

org_patterns = [
    path("", accounts.OrgDetailView.as_view(), name="org-detail"),
    *org_router.urls,
    *agents_urls.urlpatterns,
    *rollouts_urls.urlpatterns,
    *webhooks_urls.urlpatterns,
    *approvals_urls.urlpatterns,
    *monitoring_urls.urlpatterns,
]

urlpatterns = [
    path("auth/token/", accounts.TokenView.as_view(), name="auth-token"),
    path("auth/tokens/", accounts.TokenListView.as_view(), name="auth-tokens"),
    path("auth/tokens/<uuid:token_id>/", accounts.TokenDetailView.as_view(), name="auth-token-detail"),
    path("auth/password/", accounts.PasswordView.as_view(), name="auth-password"),
    path("me/", accounts.MeView.as_view(), name="me"),
    path("orgs/", accounts.OrgListView.as_view(), name="orgs"),
    path("orgs/<slug:org>/", include(org_patterns)),
    *gateway_urls.urlpatterns,
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api:schema"), name="redoc"),
    re_path(r"^.*$", api_not_found, name="not-found"),
]
