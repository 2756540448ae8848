"""The pipeline board on the Overview, the stage dashboard and the report page."""

from datetime import timedelta
from decimal import Decimal

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Stage
from agents.services.versions import version_save
from monitoring.board import pipeline_board
from monitoring.rollup import metrics_rollup
from monitoring.services import alert_open_or_update
from rollouts.policy import stage_policy_update
from rollouts.services.release import release_create
from tests.factories import add_component, make_agent, owner_access, promote, signed_in, skill

from .helpers import converse


def stage(org, slug):
    return Stage.objects.for_org(org).get(slug=slug)


def estate(world):
    """Support: Development (live v1, an open alert, a change not pulled yet) → Testing
    (a canary of v2 at 5 %)."""
    access = owner_access(world.acme)
    dev = make_agent(world.acme, "Support")
    testing = promote(dev)
    add_component(dev, "skill", "refunds", skill(["refund please"], ["Sure."]))
    stage_policy_update(
        access=access, stage=stage(world.acme, "testing"), document={"releases": {"required": True}}
    )
    version_save(access=access, agent=testing, changelog="candidate")
    testing.refresh_from_db()
    release = release_create(
        access=access, agent=testing, version=testing.version, changelog="try v2", strategy="canary"
    )
    alert_open_or_update(
        org=world.acme,
        stage=dev.stage,
        metric="error_rate",
        level="critical",
        value=Decimal("0.2"),
        threshold=Decimal("0.01"),
        agent=dev,
        version=1,
    )
    return dev, testing, release


def test_board_cells(world):
    dev, testing, release = estate(world)
    board = pipeline_board(world.access("owner"))
    assert [s.slug for s in board.stages] == ["development", "testing", "staging", "production"]
    [row] = board.rows
    d, t, s, p = row.cells
    assert s is None and p is None
    assert d.agent.pk == dev.pk and d.agent.live_version == 1 and d.alerts == 1 and not d.updates
    assert t.agent.pk == testing.pk and t.updates and t.alerts == 0
    assert t.release.pk == release.pk and t.release.weight == 5 and t.release.status == "progressing"
    assert t.agent.live_version == 1 and t.agent.version == 2

    page = signed_in(world.users["owner"]).get("/orgs/acme/").content.decode()
    assert "Pipeline board" in page
    assert f"/orgs/acme/agents/{testing.pk}/releases/{release.pk}/" in page and "5 %" in page
    assert f"/orgs/acme/agents/{testing.pk}/pull/" in page and "updates available" in page
    assert "1 alert" in page and "/orgs/acme/stages/development/dashboard/#alerts" in page
    assert "live v1" in page


def test_board_shows_only_the_stages_a_member_has_a_role_in(world):
    estate(world)
    tester = pipeline_board(world.access("tester"))  # viewer of Development, manager of Testing
    assert [s.slug for s in tester.stages] == ["development", "testing"]
    developer = pipeline_board(world.access("developer"))
    assert [s.slug for s in developer.stages] == ["development"]
    assert [len(r.cells) for r in developer.rows] == [1]
    assert pipeline_board(world.access("member")).rows == []
    page = signed_in(world.users["developer"]).get("/orgs/acme/").content.decode()
    assert "/orgs/acme/stages/testing/dashboard/" not in page and "canary v2" not in page.lower()


def test_board_queries_do_not_grow_with_lineages(world):
    estate(world)

    def count():
        with CaptureQueriesContext(connection) as captured:
            board = pipeline_board(world.access("tester"))
        return len(captured), len(board.rows)

    few, rows = count()
    for n in range(4):
        agent = make_agent(world.acme, f"Agent {n}")
        promote(agent)
        add_component(agent, "skill", "extra", skill([f"x{n}"], ["y"]))
    many, more_rows = count()
    assert more_rows == rows + 4
    assert many == few


def test_stage_dashboard(world, settings):
    settings.MONITORING_ALERT_SOURCES = "live"
    dev, testing, release = estate(world)
    converse(
        dev,
        at=timezone.now() - timedelta(minutes=5),
        replies=[(200, None), (400, {"type": "error"})],
        rating=5,
    )
    metrics_rollup(org_id=world.acme.pk, now=timezone.now() + timedelta(minutes=1))
    client = signed_in(world.users["tester"])
    page = client.get("/orgs/acme/stages/development/dashboard/").content.decode()
    assert "Development dashboard" in page and "Support" in page
    assert "Open alerts" in page and "error_rate" in page
    assert "33.33 %" in page  # 1 error in 3 agent turns (the greeting counts as a turn)
    assert "spent" in page or "of" in page
    testing_page = client.get("/orgs/acme/stages/testing/dashboard/").content.decode()
    assert f"/orgs/acme/agents/{testing.pk}/releases/{release.pk}/" in testing_page
    assert signed_in(world.users["developer"]).get("/orgs/acme/stages/testing/dashboard/").status_code == 403
    assert client.get("/orgs/acme/stages/nowhere/dashboard/").status_code == 404
    assert "/orgs/acme/stages/development/dashboard/" in client.get("/orgs/acme/stages/").content.decode()
    assert (
        signed_in(world.users["outsider"]).get("/orgs/acme/stages/development/dashboard/").status_code == 404
    )
