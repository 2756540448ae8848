"""Meta-tests: nothing bypasses the sealed bases, and every endpoint joins the mixin."""

import importlib
import pathlib
import uuid

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from accounts.models import Stage
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
APP_DIRS = ("accounts", "agents", "rollouts", "lifecycle", "webhooks", "approvals", "monitoring")


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


def _import_everything():
    """Every app module and every test module: a subclass defined anywhere is seen."""
    for app in (*APP_DIRS, "tests"):
        for path in sorted((ROOT / app).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if "migrations" in parts or parts[-1] in ("conftest", "__init__"):
                continue
            if "tests" in parts and not parts[-1].startswith(("test_", "helpers", "api_mixin")):
                continue
            if parts[0] == "tests" and len(parts) > 1 and parts[1] == "browser":
                continue  # needs Playwright's own fixtures at import; holds no endpoint tests
            importlib.import_module(".".join(parts))


def all_subclasses(cls) -> set[type]:
    """Every subclass, however deep (`__subclasses__()` lists only direct ones)."""
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub} | all_subclasses(sub)
    return found


def test_every_org_scoped_view_joins_the_cross_tenant_mixin():
    _import_everything()
    views = {
        view for _, _, view in api_routes() if isinstance(view, type) and issubclass(view, OrgScopedMixin)
    }
    missing = sorted(v.__qualname__ for v in views - COVERED_VIEWS)
    assert missing == [], f"org-scoped views without OrgScopedEndpointTests: {missing}"


def test_covering_tests_declare_what_the_view_can_do():
    _import_everything()
    for case in all_subclasses(OrgScopedEndpointTests):
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
    "monitoring/rollup.py": "the rollup write-back (UPDATE … FROM VALUES; bulk_update is quadratic)",
}
RAW_CALLS = {"cursor", "raw", "execute", "executemany", "copy_expert"}


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


# --- consumers ----------------------------------------------------------------------------
def test_every_websocket_route_uses_the_sealed_consumer_base():
    from lifecycle.consumers import OrgScopedConsumer
    from lifecycle.routing import websocket_urlpatterns

    _import_everything()
    for pattern in websocket_urlpatterns:
        consumer = getattr(pattern.callback, "consumer_class", None)
        assert isinstance(consumer, type) and issubclass(consumer, OrgScopedConsumer), pattern
        assert "<slug:org>" in str(pattern.pattern), pattern
    for consumer in all_subclasses(OrgScopedConsumer):
        if consumer.__module__.split(".")[0] not in APP_DIRS:
            continue  # the sealing tests' throwaway classes
        assert consumer.rule is not None, consumer
        assert consumer.model is not None and hasattr(consumer.model.objects, "for_org"), consumer


# --- every route that takes an id, probed with another org's ids ---------------------------
PROBE_METHODS = ("get", "post", "put", "patch", "delete")


def _route_params(route: str) -> list[str]:
    import re

    regex_groups = re.compile(r"\(\?P<(\w+)>[^)]*\)")
    names = regex_groups.findall(route) + re.findall(r"<(?:\w+:)?(\w+)>", regex_groups.sub("", route))
    return [n for n in names if n != "org"]


def _fill(route: str, values: dict) -> str:
    import re

    url = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: str(values[m.group(1)]), route)
    url = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(values[m.group(1)]), url)
    return "/" + url.replace("^", "").replace("$", "")


def _is_global_id(value) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def _probe(client, url: str) -> dict:
    return {method: getattr(client, method)(url, {}, format="json").status_code for method in PROBE_METHODS}


def test_every_api_route_with_an_id_is_404_for_another_orgs_id(world):
    """Another org's id, under your own org (and under your own parent), is missing: 404
    for every method the route has (405 for those it has not), extra actions included."""
    _import_everything()
    cases = {}
    for case in sorted(all_subclasses(OrgScopedEndpointTests), key=lambda c: c.__qualname__):
        for view in case.views:
            cases.setdefault(view, case)
    client = world.client("owner")
    probed, leaks, unfilled, controls = [], [], [], []
    for route, name, view in api_routes():
        params = _route_params(route)
        if "<slug:org>" not in route or name in UNSCOPED_ROUTES or not params or view not in cases:
            continue
        case = cases[view]()
        lookup = view.lookup_url_kwarg or view.lookup_field
        parent_param = next((p for p in params if p != lookup), None)
        own = {"org": "acme"}
        foreign = {"org": "acme"}
        if parent_param == "stage_slug" and lookup not in params:
            continue  # a stage slug is a name within an org (acme has "testing" too)
        if parent_param:
            own_parts = case.path_kwargs(world, world.acme)
            if len(own_parts) != 1:
                unfilled.append((name, case.__class__.__qualname__))
                continue
            own[parent_param] = next(iter(own_parts.values()))
            foreign[parent_param] = next(iter(case.path_kwargs(world, world.globex).values()))
        if lookup in params:
            own[lookup] = case.make_object(world, world.acme)
            foreign[lookup] = case.make_object(world, world.globex)
        if lookup in params:
            controls.append(client.get(_fill(route, own)).status_code)
        variants = [foreign]  # everything foreign
        if parent_param and lookup in params and _is_global_id(foreign[lookup]):
            variants.append({**own, lookup: foreign[lookup]})  # own parent, foreign child
        for values in variants:
            if values == own or all(values[p] == own[p] for p in params):
                continue  # shared names (a stage slug): nothing foreign to probe with
            url = _fill(route, values)
            statuses = _probe(client, url)
            probed.append(url)
            if set(statuses.values()) - {404, 405} or 404 not in statuses.values():
                leaks.append((name, url, statuses))
    assert leaks == [], leaks
    assert unfilled == [], f"cases whose path_kwargs() cannot fill the route: {unfilled}"
    # The same routes with acme's own ids answer: the probe reaches real objects.
    assert controls.count(200) >= 10, controls
    actions = ("export", "restore", "diff", "apply", "decline", "download", "cancel", "unarchive")
    for action in actions:
        assert any(f"/{action}/" in url for url in probed), f"no route with /{action}/ was probed"


def test_every_org_page_with_an_id_is_404_for_another_orgs_id(world):
    from accounts.models import Membership
    from lifecycle.operations import Operation
    from tests.factories import make_agent, signed_in

    theirs = make_agent(world.globex, "Globex only")
    foreign = {
        "org": "acme",
        "agent_id": theirs.pk,
        "member_id": Membership.objects.for_org(world.globex).first().pk,
        "lineage": theirs.lineage.slug,
        "slug": Stage.objects.for_org(world.globex).get(slug="testing").slug,
        "module": "skills",
        "op": "rename",
    }
    operations = Operation.objects.for_org(world.globex)
    if not operations.exists():
        from lifecycle.tests.test_api_operations import make_operation

        make_operation(world.globex)
    foreign["operation_id"] = operations.first().pk
    from rollouts.models import TestRun, TestSuite

    suite = TestSuite.objects.create(org=world.globex, lineage_id=theirs.lineage_id, name="Theirs")
    foreign["run_id"] = TestRun.objects.create(
        org=world.globex, agent=theirs, stage_id=theirs.stage_id, suite=suite
    ).pk
    from webhooks.services.webhooks import webhook_create

    foreign["webhook_id"] = webhook_create(
        access=world.access("outsider", world.globex),
        url="http://127.0.0.1:9/",
        events=["*"],
        secret="0123456789abcdef",
    ).pk

    from approvals.tests.helpers import make_approval

    foreign["approval_id"] = make_approval(world.globex).pk
    from rollouts.models import Release

    foreign["release_id"] = Release.objects.for_org(world.globex).filter(agent=theirs).first().pk
    client = signed_in(world.users["owner"])
    leaks, probed = [], 0
    for route, name, _ in walk(get_resolver().url_patterns):
        params = _route_params(route)
        if not route.startswith("orgs/<slug:org>/") or not params:
            continue
        if set(params) <= {"slug", "module", "op"}:
            continue  # stage slugs are per-org names (acme has "testing" too): nothing foreign
        url = _fill(route, foreign)
        statuses = {m: getattr(client, m)(url).status_code for m in ("get", "post")}
        probed += 1
        if set(statuses.values()) - {404, 405} or 404 not in statuses.values():
            leaks.append((name, url, statuses))
    assert leaks == [], leaks
    assert probed >= 15
    mine = make_agent(world.acme, "Acme own")
    assert (
        client.get(
            _fill("orgs/<slug:org>/agents/<uuid:agent_id>/versions/", {**foreign, "agent_id": mine.pk})
        ).status_code
        == 200
    )


def test_object_pages_declare_their_stage_scope_and_cannot_replace_the_lookup():
    from agents.models import Agent
    from agents.views import AgentMixin
    from lifecycle.ui import OrgObjectPage

    with pytest.raises(TypeError, match="must declare stage_field"):
        type("Forgetful", (OrgObjectPage,), {"model": Agent, "__module__": "x"})
    assert type("Declared", (OrgObjectPage,), {"model": Agent, "stage_field": None, "__module__": "x"})
    with pytest.raises(TypeError, match="sealed"):
        type("Sneaky", (AgentMixin,), {"resolve_object": lambda self: None, "__module__": "x"})
    sneaky = type("SneakyMixin", (), {"resolve_object": lambda self: None, "__module__": "x"})
    with pytest.raises(TypeError, match="sealed"):
        type("Sneakier", (sneaky, AgentMixin), {"__module__": "x"})
    # Every page about one agent finds it through the sealed lookup.
    for route, _, view in walk(get_resolver().url_patterns):
        if route.startswith("orgs/<slug:org>/agents/<uuid:agent_id>/"):
            assert issubclass(view, OrgObjectPage) and view.stage_field == "stage", route


def test_every_local_app_is_collected_by_pytest():
    """An app missing from `testpaths` has tests that no tier ever runs (approvals had)."""
    import tomllib

    from django.apps import apps
    from django.conf import settings

    root = pathlib.Path(settings.BASE_DIR)
    testpaths = set(
        tomllib.loads((root / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["testpaths"]
    )
    local = {config.name for config in apps.get_app_configs() if pathlib.Path(config.path).parent == root}
    assert local and local <= testpaths, sorted(local - testpaths)
