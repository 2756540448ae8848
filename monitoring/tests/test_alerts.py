"""Alerts: one open per (stage, agent, metric), opened and resolved once, listed by stage role."""

from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from accounts.models import Stage
from lifecycle.audit import AuditEvent
from monitoring.api.views import AlertViewSet
from monitoring.models import Alert
from monitoring.services import alert_open_or_update, alert_resolve
from tests.api_mixin import OrgScopedEndpointTests, assert_envelope
from tests.factories import make_agent

ALERTS_URL = "/api/v1/orgs/{org}/alerts/"
ALERTS = ALERTS_URL.format(org="acme")


def stage_of(org, slug="production"):
    return Stage.objects.for_org(org).get(slug=slug)


def open_alert(org, slug="production", metric="spend", level="warning", value="8", agent=None):
    alert, _ = alert_open_or_update(
        org=org,
        stage=stage_of(org, slug),
        metric=metric,
        level=level,
        value=Decimal(value),
        threshold=Decimal("8"),
        agent=agent,
        details={"month": "2026-03"},
    )
    return alert


class TestAlertsTenancy(OrgScopedEndpointTests):
    views = (AlertViewSet,)
    list_url = ALERTS_URL
    reader = "viewer"

    def make_object(self, world, org):
        return str(open_alert(org).pk)


def test_one_open_alert_per_stage_agent_and_metric(world):
    first = open_alert(world.acme, value="8.50")
    again, opened = alert_open_or_update(
        org=world.acme,
        stage=stage_of(world.acme),
        metric="spend",
        level="critical",
        value=Decimal("10.01"),
        threshold=Decimal("10"),
    )
    assert not opened and again.pk == first.pk
    again.refresh_from_db()
    assert (again.level, again.value, again.threshold) == ("critical", Decimal("10.01"), Decimal("10"))
    # Another metric, another stage, or one agent of the stage: alerts of their own.
    agent = make_agent(world.acme)
    others = {
        open_alert(world.acme, metric="latency_p95_ms").pk,
        open_alert(world.acme, slug="testing").pk,
        open_alert(world.acme, slug="development", agent=agent).pk,
        open_alert(world.acme, slug="development").pk,
    }
    assert len(others) == 4 and first.pk not in others
    assert AuditEvent.objects.for_org(world.acme).filter(action="alert.opened").count() == 5


def test_the_database_refuses_a_second_open_alert(world):
    alert = open_alert(world.acme)
    for agent in (None, make_agent(world.acme)):
        if agent is not None:
            open_alert(world.acme, agent=agent)
        with pytest.raises(IntegrityError), transaction.atomic():
            Alert.objects.create(
                org=world.acme,
                stage=alert.stage,
                agent=agent,
                metric="spend",
                level="warning",
                value=1,
                threshold=1,
            )
    # Once resolved, the next one may open.
    alert_resolve(org=world.acme, stage=alert.stage, metric="spend")
    assert open_alert(world.acme).pk != alert.pk


def test_resolve_is_once(world):
    alert = open_alert(world.acme)
    assert alert_resolve(org=world.acme, stage=alert.stage, metric="spend").pk == alert.pk
    assert alert_resolve(org=world.acme, stage=alert.stage, metric="spend") is None
    assert AuditEvent.objects.for_org(world.acme).filter(action="alert.resolved").count() == 1


def test_the_list_filters_by_status_and_stage_and_shows_only_stages_with_a_role(world):
    prod = open_alert(world.acme, value="9.5")
    testing = open_alert(world.acme, slug="testing")
    alert_resolve(org=world.acme, stage=testing.stage, metric="spend")
    viewer = world.client("viewer")
    body = viewer.get(ALERTS).json()
    assert [a["id"] for a in body["results"]] == [str(testing.pk), str(prod.pk)]
    shown = body["results"][1]
    assert set(shown) >= {
        "id",
        "stage",
        "agent",
        "version",
        "metric",
        "level",
        "value",
        "threshold",
        "opened_at",
        "updated_at",
        "resolved_at",
    }
    assert (shown["stage"], shown["metric"], shown["level"], shown["value"], shown["threshold"]) == (
        "production",
        "spend",
        "warning",
        "9.50",
        "8.00",
    )
    assert shown["resolved_at"] is None and shown["agent"] is None
    assert [a["id"] for a in viewer.get(ALERTS, {"status": "open"}).json()["results"]] == [str(prod.pk)]
    assert [a["id"] for a in viewer.get(ALERTS, {"status": "resolved"}).json()["results"]] == [
        str(testing.pk)
    ]
    assert [a["id"] for a in viewer.get(ALERTS, {"stage": "testing"}).json()["results"]] == [str(testing.pk)]
    # The tester has roles in development and testing only.
    assert [a["id"] for a in world.client("tester").get(ALERTS).json()["results"]] == [str(testing.pk)]
    assert world.client("member").get(ALERTS).json()["results"] == []


@pytest.mark.parametrize(
    "params",
    [{"status": "closed"}, {"status": ""}, {"stage": "nowhere"}, {"stage": "a\x00b"}, {"stage": "x" * 500}],
)
def test_bad_filters_are_400(world, params):
    body = assert_envelope(world.client("viewer").get(ALERTS, params), 400, "invalid")
    assert set(body["error"]["fields"]) == set(params)


def test_the_list_costs_the_same_queries_for_one_alert_or_a_page(world):
    client = world.client("viewer")
    open_alert(world.acme)
    client.get(ALERTS)
    with CaptureQueriesContext(connection) as one:
        assert len(client.get(ALERTS).json()["results"]) == 1
    for n in range(8):
        open_alert(world.acme, metric=f"metric_{n}")
    with CaptureQueriesContext(connection) as page:
        assert len(client.get(ALERTS).json()["results"]) == 9
    assert len(page) == len(one)


def test_webhooks_hear_opened_and_resolved_once_each(world, on_commit):
    import hashlib
    import hmac

    from tests.factories import owner_access
    from tests.http_servers import Recorder
    from webhooks.services.webhooks import webhook_create

    secret = "alert-signing-secret-0123456789"
    with Recorder(lambda recorder, request: (200, {}, 0)) as server:
        webhook_create(
            access=owner_access(world.acme), url=server.url + "/hook", events=["alert.*"], secret=secret
        )
        alert = on_commit(open_alert, world.acme)
        on_commit(open_alert, world.acme, value="9")  # an update: nobody is told again
        on_commit(alert_resolve, org=world.acme, stage=alert.stage, metric="spend")
        on_commit(alert_resolve, org=world.acme, stage=alert.stage, metric="spend")
        assert [r["body"]["event"] for r in server.requests] == ["alert.opened", "alert.resolved"]
        opened, resolved = (r["body"]["data"] for r in server.requests)
        assert (opened["id"], opened["stage"], opened["metric"], opened["value"]) == (
            str(alert.pk),
            "production",
            "spend",
            "8.00",
        )
        assert opened["resolved_at"] is None and resolved["resolved_at"] is not None
        assert resolved["value"] == "9.00"
        request = server.requests[0]
        signature = {k.lower(): v for k, v in request["headers"].items()}["x-lifecycle-signature"]
        assert signature == "sha256=" + hmac.new(secret.encode(), request["raw"], hashlib.sha256).hexdigest()
