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
        {"list": lambda self, r: None, "rules": {"list": Member()}, "stage_field": None, "__module__": "x"},
    )


def test_every_endpoint_declares_its_stage_scope():
    body = {"list": lambda self, r: None, "rules": {"list": Member()}, "__module__": "x"}
    with pytest.raises(TypeError, match="must declare stage_field"):
        type("Forgetful", (OrgScopedViewSet,), body)
    assert type("OrgWide", (OrgScopedViewSet,), {**body, "stage_field": None}).stage_field is None
    assert type("Staged", (OrgScopedViewSet,), {**body, "stage_field": "stage"}).stage_field == "stage"
    for _, name, view in api_routes():
        if isinstance(view, type) and issubclass(view, OrgScopedMixin):
            assert view.stage_field is None or isinstance(view.stage_field, str), name


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


# --- raw SQL ----------------------------------------------------------------------------
# The only modules that may reach past the ORM, and why. Every statement in them names the
# org in each WHERE clause (the ORM's for_org() cannot reach raw SQL).
RAW_SQL_MODULES = {
    "agents/copying.py": "INSERT … SELECT / UPDATE … FROM for promotion, pull and back-port",
    "agents/versioning.py": "one-statement content store and working-copy manifest",
    "agents/sync.py": "the pull comparison's rows without per-object ORM cost",
    "agents/services/conversations.py": "the turn writer (COPY, one-statement gateway turns)",
    "lifecycle/prepared.py": "runs statements the ORM compiled from a scoped queryset",
}
RAW_CALLS = {"cursor", "raw", "execute", "executemany", "copy_expert"}
APP_DIRS = ("accounts", "agents", "rollouts", "lifecycle")


def _app_modules():
    for app in APP_DIRS:
        for path in sorted((ROOT / app).rglob("*.py")):
            parts = path.relative_to(ROOT).parts
            if "tests" in parts or "migrations" in parts:
                continue
            yield path


def _sql_text(node) -> str | None:
    """A string literal or f-string as text ({} where values go), if it reads as SQL."""
    import ast
    import re

    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        text = node.value
    elif isinstance(node, ast.JoinedStr):
        text = "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
    else:
        return None
    statement = r"\bSELECT\b.*\bFROM\b|\bUPDATE\b.*\bSET\b|\bINSERT INTO\b|\bDELETE FROM\b|\bCOPY\b.*\bFROM\b"
    return text if re.search(statement, text, re.DOTALL) else None


def test_raw_sql_only_in_allowlisted_modules():
    import ast

    offenders = []
    for path in _app_modules():
        rel = path.relative_to(ROOT).as_posix()
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in RAW_CALLS
                and rel not in RAW_SQL_MODULES
            ):
                offenders.append(f"{rel}:{node.lineno} .{node.func.attr}(")
    assert offenders == [], f"raw SQL outside {sorted(RAW_SQL_MODULES)}: {offenders}"


def test_every_raw_statement_names_the_org():
    import ast
    import re

    offenders = []
    for rel in RAW_SQL_MODULES:
        tree = ast.parse((ROOT / rel).read_text())
        # An f-string's literal pieces are read as part of the whole f-string.
        pieces = {id(v) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for v in n.values}
        documented = (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
        pieces |= {
            id(n.body[0].value)
            for n in ast.walk(tree)
            if isinstance(n, documented) and ast.get_docstring(n, clean=False) is not None
        }
        for node in ast.walk(tree):
            if id(node) in pieces:
                continue
            text = _sql_text(node)
            if text is None:
                continue
            statement = " ".join(text.split())
            if re.search(r"\bUPDATE\b.*\bSET\b|\bDELETE FROM\b", statement) and "WHERE" not in statement:
                offenders.append(f"{rel}:{node.lineno} UPDATE/DELETE without WHERE")
            for clause in statement.split("WHERE")[1:]:
                if "org_id" not in clause.split("SELECT")[0]:
                    offenders.append(f"{rel}:{node.lineno} WHERE without org_id: {clause[:80]}")
    assert offenders == [], offenders


def test_the_raw_sql_check_catches_a_statement_without_the_org():
    import ast

    bad = ast.parse('f"UPDATE {t} SET x = 1 WHERE agent_id = %s"').body[0].value
    statement = " ".join(_sql_text(bad).split())
    assert "org_id" not in statement.split("WHERE")[1]


# --- the seal walks the MRO ---------------------------------------------------------------
def test_a_mixin_ahead_of_the_sealed_api_base_is_refused():
    for method in ("get_queryset", "get_object", "get_permissions", "initial", "check_object_permissions"):
        sneaky = type("SneakyMixin", (), {method: lambda self, *a: None, "__module__": "x"})
        with pytest.raises(TypeError, match="sealed"):
            type("Sneaky", (sneaky, OrgScopedViewSet), {"__module__": "x"})
        # ... and two levels down, through an intermediate class.
        middle = type("Middle", (sneaky,), {"__module__": "x"})
        with pytest.raises(TypeError, match="through SneakyMixin"):
            type("Deeper", (middle, OrgScopedViewSet), {"__module__": "x"})


def test_a_mixin_ahead_of_the_sealed_page_base_is_refused():
    sneaky = type("SneakyMixin", (), {"dispatch": lambda self, r: None, "__module__": "x"})
    with pytest.raises(TypeError, match="sealed"):
        type("SneakyPage", (sneaky, OrgPage), {"__module__": "x"})


def test_the_consumer_base_is_sealed_through_the_mro():
    from lifecycle.consumers import SEALED_CONSUMER_METHODS, OrgScopedConsumer

    assert {"_authenticate", "_resolve", "_origin_allowed"} <= set(SEALED_CONSUMER_METHODS)
    for method in SEALED_CONSUMER_METHODS:
        with pytest.raises(TypeError, match="sealed"):
            type(
                "Sneaky",
                (OrgScopedConsumer,),
                {method: lambda self: None, "rule": Member(), "__module__": "x"},
            )
        sneaky = type("SneakyMixin", (), {method: lambda self: None, "__module__": "x"})
        with pytest.raises(TypeError, match="sealed"):
            type("Sneaky", (sneaky, OrgScopedConsumer), {"rule": Member(), "__module__": "x"})
