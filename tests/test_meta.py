"""Meta-tests: nothing bypasses the sealed bases, and every endpoint joins the mixin."""

import importlib
import pathlib

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from lifecycle.api import (
    STAGE_KEY_ROUTES,
    UNSCOPED_ROUTES,
    Member,
    OrgScopedMixin,
    OrgScopedViewSet,
    PublicAPIView,
)
from lifecycle.ui import OrgPage
from rollouts.gateway import GatewayView
from tests.api_mixin import COVERED_VIEWS, OrgScopedEndpointTests

ROOT = pathlib.Path(__file__).resolve().parent.parent


def walk(patterns, prefix="", namespace=""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            ns = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from walk(entry.url_patterns, prefix + str(entry.pattern), ns)
        elif isinstance(entry, URLPattern):
            callback = entry.callback
            view = getattr(callback, "cls", None) or getattr(callback, "view_class", None) or callback
            name = f"{namespace}{entry.name}" if entry.name else None
            yield prefix + str(entry.pattern), name, view


def api_routes():
    return [
        (route, name, view)
        for route, name, view in walk(get_resolver().url_patterns)
        if route.startswith("api/")
    ]


def test_every_api_route_is_sealed_or_explicitly_allowlisted():
    offenders = []
    for route, name, view in api_routes():
        if name in UNSCOPED_ROUTES:
            continue
        if not (isinstance(view, type) and issubclass(view, OrgScopedMixin)):
            offenders.append((route, name, view))
    assert offenders == [], f"API routes bypassing the sealed base: {offenders}"


def test_allowlisted_routes_are_real_and_not_under_an_org():
    names = {name for _, name, _ in api_routes()}
    assert names >= UNSCOPED_ROUTES, UNSCOPED_ROUTES - names
    for route, name, view in api_routes():
        if name in STAGE_KEY_ROUTES:
            # Under an org, but for a stage's key: the gateway's own base scopes them.
            assert issubclass(view, GatewayView), name
        elif name in UNSCOPED_ROUTES:
            assert "<slug:org>" not in route, route
            if isinstance(view, type) and issubclass(view, OrgScopedMixin):
                pytest.fail(f"{name} is allowlisted but sealed: drop it from UNSCOPED_ROUTES")


def test_unscoped_api_views_use_the_public_base():
    for _, name, view in api_routes():
        if name in UNSCOPED_ROUTES and name not in {"api:schema", "api:docs", "api:redoc", "api:not-found"}:
            assert issubclass(view, PublicAPIView), name


def _import_api_tests():
    for path in sorted(ROOT.glob("*/tests/test_api_*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        importlib.import_module(module)


def test_every_org_scoped_view_joins_the_cross_tenant_mixin():
    _import_api_tests()
    views = {
        view for _, _, view in api_routes() if isinstance(view, type) and issubclass(view, OrgScopedMixin)
    }
    missing = sorted(v.__qualname__ for v in views - COVERED_VIEWS)
    assert missing == [], f"org-scoped views without OrgScopedEndpointTests: {missing}"


def test_covering_tests_declare_what_the_view_can_do():
    _import_api_tests()
    for case in OrgScopedEndpointTests.__subclasses__():
        for view in case.views:
            if not issubclass(view, OrgScopedViewSet):
                continue
            where = f"{case.__qualname__} for {view.__qualname__}"
            if hasattr(view, "retrieve"):
                assert case.detail_url, f"{where}: set detail_url"
            if hasattr(view, "create"):
                assert case.create_payload is not None, f"{where}: set create_payload"
            if hasattr(view, "partial_update") or hasattr(view, "destroy"):
                assert case.etag_write is not None, f"{where}: set etag_write"


def test_subclasses_cannot_override_the_sealed_methods():
    for method in ("get_queryset", "get_object", "get_permissions"):
        with pytest.raises(TypeError, match="sealed"):
            type("Sneaky", (OrgScopedViewSet,), {method: lambda self: None, "__module__": "x"})


def test_every_action_needs_a_rule():
    with pytest.raises(TypeError, match="no rule for: list"):
        type("Ruleless", (OrgScopedViewSet,), {"list": lambda self, r: None, "__module__": "x"})
    type(
        "Ruled",
        (OrgScopedViewSet,),
        {"list": lambda self, r: None, "rules": {"list": Member()}, "__module__": "x"},
    )


def test_org_ui_pages_use_the_sealed_page_base():
    offenders = [
        (route, view)
        for route, _, view in walk(get_resolver().url_patterns)
        if route.startswith("orgs/<slug:org>/") and not (isinstance(view, type) and issubclass(view, OrgPage))
    ]
    assert offenders == []
    with pytest.raises(TypeError, match="sealed"):
        type("SneakyPage", (OrgPage,), {"dispatch": lambda self, r: None, "__module__": "x"})


def test_the_innermost_middleware_is_sync_only():
    """See the MIDDLEWARE comment in settings: it keeps a request on one thread under ASGI."""
    from django.conf import settings
    from django.utils.module_loading import import_string

    innermost = import_string(settings.MIDDLEWARE[-1])
    # Django's own defaults for middleware that declares neither.
    assert getattr(innermost, "sync_capable", True)
    assert not getattr(innermost, "async_capable", False)
