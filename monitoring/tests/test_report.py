"""The post-deployment report: the new version's first 24 h against the old's, as JSON,
CSV and a page."""

import csv
import io
import uuid
from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from agents.services.versions import version_save
from agents.tests.helpers import AgentChildTests
from monitoring.api.report import ReleaseReportView
from monitoring.models import Alert
from monitoring.rollup import metrics_rollup
from rollouts.models import Release
from tests.api_mixin import assert_envelope
from tests.factories import owner_access, signed_in

from .helpers import converse, live_agent, minute

ERROR = {"type": "error", "code": "tool_failed", "message": "boom"}


def released(org, hours_ago=2):
    """v1 live with traffic, then v2 released `hours_ago` with its own traffic since."""
    agent = live_agent(org, "Support =cmd")
    finished = minute(-hours_ago * 60)
    for i in range(4):  # v1: 4 conversations, one error in 8 agent turns, 1 s answers
        converse(
            agent,
            at=finished - timedelta(minutes=30 + i),
            version=1,
            replies=[(1000, ERROR if i == 0 else None)],
        )
    version_save(access=owner_access(org), agent=agent, changelog="v2")
    agent.refresh_from_db()
    release = Release.objects.for_org(org).filter(agent=agent, candidate_version=2).get()
    # It succeeded `hours_ago`, not now: the report reads from that moment on.
    Release.objects.for_org(org).filter(pk=release.pk).update(finished_at=finished)
    for i in range(2):  # v2: 2 conversations, 200 ms answers, rated 5
        converse(agent, at=finished + timedelta(minutes=10 + i), version=2, replies=[(200, None)], rating=5)
    # Outside both periods: never counted.
    converse(agent, at=finished - timedelta(hours=5), version=1, replies=[(9000, ERROR)])
    metrics_rollup(org_id=org.pk, now=timezone.now() + timedelta(minutes=1))
    release.refresh_from_db()
    return agent, release


class TestReleaseReportTenancy(AgentChildTests):
    views = (ReleaseReportView,)
    list_url = "/api/v1/orgs/{org}/agents/{agent}/releases/{id}/report/"
    detail_url = list_url
    reader = "viewer"
    listable = False

    def released_in(self, world, org):
        cache = world.__dict__.setdefault("_released", {})
        if org.pk not in cache:
            cache[org.pk] = released(org)
        return cache[org.pk]

    def path_kwargs(self, world, org):
        return {"agent": self.released_in(world, org)[0].pk}

    def make_object(self, world, org):
        return str(self.released_in(world, org)[1].pk)

    def url(self, world, kind, org, lookup=None):
        # The "list" probes (anonymous, foreign org) name some release id too.
        return super().url(world, kind, org, lookup or str(uuid.uuid4()))


def report_url(agent, release):
    return f"/api/v1/orgs/acme/agents/{agent.pk}/releases/{release.pk}/report/"


def test_report_numbers(world):
    agent, release = released(world.acme)
    Alert.objects.create(
        org=world.acme, stage=agent.stage, agent=agent, version=2, metric="latency_p95_ms",
        level="warning", value=Decimal("3100"), threshold=Decimal("3000"),
    )  # fmt: skip
    body = world.client("viewer").get(report_url(agent, release)).json()
    assert (body["old_version"], body["new_version"], body["complete"]) == (1, 2, False)
    rows = {r["metric"]: r for r in body["metrics"]}
    # The old side covers as long a stretch as the new one has had (2 h) just before it.
    assert (rows["conversations"]["old"], rows["conversations"]["new"]) == (4, 2)
    assert (rows["turns"]["old"], rows["turns"]["new"]) == (8, 4)
    assert (rows["errors"]["old"], rows["errors"]["new"]) == (1, 0)
    assert (rows["error_rate"]["old"], rows["error_rate"]["new"]) == (0.125, 0.0)
    assert rows["error_rate"]["change"] == -1.0 and rows["error_rate"]["better"] is False
    # Within the histogram's buckets: 1,000 ms falls in [1000, 1250), 200 ms in [200, 250).
    assert 1000 <= rows["latency_p95_ms"]["old"] <= 1250 and 200 <= rows["latency_p95_ms"]["new"] <= 250
    assert (rows["rating_avg"]["old"], rows["rating_avg"]["new"], rows["ratings"]["new"]) == (None, 5.0, 2)
    assert [a["metric"] for a in body["alerts"]] == ["latency_p95_ms"]

    response = world.client("viewer").get(report_url(agent, release) + "?format=csv")
    assert response["Content-Type"] == "text/csv" and "attachment" in response["Content-Disposition"]
    table = list(csv.reader(io.StringIO(response.content.decode())))
    assert table[0] == ["metric", "v1 (old)", "v2 (new)", "change"]
    assert ["Conversations", "4", "2", "-0.5"] in table


def test_a_release_that_has_not_succeeded_has_no_report(world):
    agent, release = released(world.acme)
    Release.objects.for_org(world.acme).filter(pk=release.pk).update(status="rolled_back")
    assert_envelope(world.client("viewer").get(report_url(agent, release)), 409, "conflict")
    page = signed_in(world.users["viewer"]).get(f"/orgs/acme/agents/{agent.pk}/releases/{release.pk}/report/")
    assert page.status_code == 200 and "rolled_back" in page.content.decode()


def test_report_page_and_downloads(world):
    agent, release = released(world.acme)
    client = signed_in(world.users["viewer"])
    base = f"/orgs/acme/agents/{agent.pk}/releases/{release.pk}/report/"
    assert base in client.get(f"/orgs/acme/agents/{agent.pk}/releases/{release.pk}/").content.decode()
    page = client.get(base).content.decode()
    assert "Post-deployment report" in page and "v1 → v2" in page and "so far" in page
    assert "-100.0 %" in page  # the error rate
    as_csv = client.get(base + "?download=csv")
    assert as_csv["Content-Type"] == "text/csv"
    assert as_csv["Content-Disposition"].endswith('.csv"')
    as_json = client.get(base + "?download=json")
    assert as_json.json()["new_version"] == 2
    assert signed_in(world.users["member"]).get(base).status_code == 404
    assert client.get(f"/orgs/acme/agents/{agent.pk}/releases/{agent.pk}/report/").status_code == 404


def test_csv_cells_cannot_run_as_formulas(world):
    from monitoring.report import release_report_csv

    report = {
        "old_version": 1, "new_version": 2, "finished_at": timezone.now(), "until": timezone.now(),
        "metrics": [{"label": "=HYPERLINK(1)", "old": "-1", "new": "+2", "change": None}], "alerts": [],
    }  # fmt: skip
    table = list(csv.reader(io.StringIO(release_report_csv(report))))
    assert table[1][:3] == ["'=HYPERLINK(1)", "'-1", "'+2"]
