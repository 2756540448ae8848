"""The live version and releases: only a release changes what live traffic is served by."""

import pytest
from django.db.migrations.loader import MigrationLoader
from rest_framework.test import APIClient

from accounts.models import Stage
from agents.models import Agent, Component
from agents.runtime.compile import CACHE
from agents.services.components import component_update
from agents.services.grants import grant_set
from agents.services.versions import version_restore, version_save
from agents.tests.helpers import AgentChildTests
from lifecycle.audit import AuditEvent
from lifecycle.errors import Forbidden
from lifecycle.operations import Operation
from rollouts.api.releases import ReleaseViewSet
from rollouts.models import Release
from rollouts.policy import stage_policy_update
from rollouts.services.backport import backport_apply, backport_propose
from rollouts.services.keys import stage_key_create
from rollouts.services.pull import pull_request
from rollouts.services.release import release_create
from tests.api_mixin import assert_envelope
from tests.factories import (
    add_component,
    add_member,
    make_agent,
    owner_access,
    promote,
    run_operation_now,
    skill,
)

RELEASES = "/api/v1/orgs/{org}/agents/{agent}/releases/"


def releases_url(agent, tail=""):
    return RELEASES.format(org=agent.org.slug, agent=agent.pk) + tail


def run_url(agent, tail=""):
    return f"/api/v1/run/{agent.org.slug}/{agent.lineage.slug}/{agent.stage.slug}/conversations/{tail}"


def gateway_for(agent) -> APIClient:
    _, raw = stage_key_create(access=owner_access(agent.org), stage=agent.stage, name="site")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def answer(client, agent, text="hello") -> tuple[int, str]:
    """(version, reply) of a fresh live conversation with `agent`'s lineage in its stage."""
    CACHE.clear()
    started = client.post(run_url(agent), {"user": "end-user-1"}, format="json")
    assert started.status_code == 201, started.content
    body = started.json()
    said = client.post(run_url(agent, f"{body['conversation']}/messages/"), {"text": text}, format="json")
    assert said.status_code == 200, said.content
    return body["version"], said.json()["events"][-1]["text"]


def greeting(agent):
    return Component.objects.for_org(agent.org_id).get(agent=agent, name="greeting")


def reply_with(agent, text: str, access=None):
    return component_update(
        access=access or owner_access(agent.org),
        component=greeting(agent),
        spec=skill(["hello"], [text]),
    )


def fresh(agent) -> Agent:
    return Agent.objects.for_org(agent.org_id).select_related("stage", "lineage", "org").get(pk=agent.pk)


def in_production(org, access=None):
    """An agent promoted through every stage: the org's last stage requires releases."""
    dev = make_agent(org, access=access)
    add_component(dev, "skill", "greeting", skill(["hello"], ["Hello from v1."]))
    version_save(access=owner_access(org), agent=dev, changelog="greeting")
    agent = dev
    for _ in range(3):
        agent = promote(agent)
    assert agent.stage.slug == "production"
    return dev, fresh(agent)


class TestReleasesTenancy(AgentChildTests):
    views = (ReleaseViewSet,)
    list_url = RELEASES
    detail_url = RELEASES + "{id}/"
    reader = "developer"
    forbidden = ("viewer", "POST", "list", {"version": 1, "changelog": "Go live"})
    create_payload = {"version": 1, "changelog": "Go live", "strategy": "direct"}
    creator = "developer"

    def make_object(self, world, org):
        agent = self.agent_in(world, org)
        return str(
            release_create(access=owner_access(org), agent=agent, version=agent.version, changelog="again").pk
        )

    def count(self, world):
        return Release.objects.for_org(world.acme).count()


def test_a_change_grant_saving_in_a_release_controlled_stage_does_not_change_what_is_served(world):
    _, prod = in_production(world.acme)
    client = gateway_for(prod)
    # Promotion made version 1, and production requires releases: nothing is live yet.
    assert prod.live_version is None
    assert_envelope(client.post(run_url(prod), {}, format="json"), 409, "not_live")
    release_create(access=owner_access(world.acme), agent=prod, version=1, changelog="Launch")
    assert answer(client, prod) == (1, "Hello from v1.")
    # A member with no role in production, but a change grant on this agent, edits and saves.
    editor = add_member(world.acme, "grantee@acme.test")
    grant_set(access=owner_access(world.acme), agent=prod, user_ref=editor.email, permissions=["change"])
    from lifecycle.access import access_for

    grantee = access_for(editor, world.acme)
    reply_with(prod, "Hello from an unreleased save.", access=grantee)
    saved = version_save(access=grantee, agent=fresh(prod), changelog="sneaky")
    assert saved.number == 2
    assert fresh(prod).live_version == 1
    assert answer(client, prod) == (1, "Hello from v1.")
    # Nor can they release it: that takes the manager role of the stage.
    with pytest.raises(Forbidden):
        release_create(access=grantee, agent=fresh(prod), version=2, changelog="mine")
    assert Release.objects.for_org(world.acme).filter(agent=prod).count() == 1


def test_a_save_in_a_stage_without_required_releases_goes_live_as_a_recorded_direct_release(world):
    developer = world.access("developer")
    agent = make_agent(world.acme, access=developer)
    add_component(agent, "skill", "greeting", skill(["hello"], ["Hi v2."]), access=developer)
    client = gateway_for(agent)
    assert fresh(agent).live_version == 1  # creation's version 1 went live at once
    version_save(access=developer, agent=agent, changelog="Say hi")
    assert fresh(agent).live_version == 2
    assert answer(client, agent) == (2, "Hi v2.")
    rows = world.client("developer").get(releases_url(agent)).json()["results"]
    assert [(r["candidate_version"], r["stable_version"], r["strategy"], r["status"]) for r in rows] == [
        (2, 1, "direct", "succeeded"),
        (1, None, "direct", "succeeded"),
    ]
    assert rows[0]["created_by"]["email"] == "developer@acme.test" and rows[0]["changelog"] == "Say hi"
    assert rows[0]["weight"] == 100 and rows[1]["changelog"] == "Created."
    detail = world.client("developer").get(f"/api/v1/orgs/acme/agents/{agent.pk}/").json()
    assert detail["live_version"] == 2 and detail["release"] is None
    assert AuditEvent.objects.for_org(world.acme).filter(action="release.succeeded").count() == 2


def test_an_explicit_release_policy_holds_back_saves_in_any_stage(world):
    agent = make_agent(world.acme)
    development = Stage.objects.for_org(world.acme).get(slug="development")
    stage_policy_update(
        access=owner_access(world.acme), stage=development, document={"releases": {"required": True}}
    )
    version_save(access=owner_access(world.acme), agent=agent, changelog="held")
    assert fresh(agent).live_version == 1


def test_pull_backport_and_restore_in_release_controlled_stages_do_not_change_the_live_version(world):
    owner = owner_access(world.acme)
    dev, prod = in_production(world.acme)
    release_create(access=owner, agent=prod, version=1, changelog="Launch")
    client = gateway_for(prod)
    # Pull: a newer staging version is pulled into production.
    staging = Agent.objects.for_org(world.acme).get(lineage=prod.lineage, stage__slug="staging")
    reply_with(staging, "Hello from staging's v2.")
    version_save(access=owner, agent=staging, changelog="staging change")
    operation = pull_request(access=owner, agent=fresh(prod), confirm="accept", changelog="pulled")
    assert run_operation_now(operation).status == "succeeded"
    assert greeting(prod).spec["responses"] == ["Hello from staging's v2."]
    assert (fresh(prod).version, fresh(prod).live_version) == (2, 1)
    # Restore: version 1's content comes back as version 3, still not live.
    version_restore(access=owner, agent=fresh(prod), number=1, changelog="back")
    assert (fresh(prod).version, fresh(prod).live_version) == (3, 1)
    assert answer(client, prod) == (1, "Hello from v1.")
    # Back-port: applying a production hotfix into a Development that requires releases.
    development = Stage.objects.for_org(world.acme).get(slug="development")
    stage_policy_update(access=owner, stage=development, document={"releases": {"required": True}})
    reply_with(prod, "Hotfixed in production.")
    before = fresh(dev)
    proposed = backport_propose(access=owner, agent=fresh(prod), include=[str(greeting(prod).uid)])
    applied = backport_apply(access=owner, backport=proposed, confirm="accept")
    assert applied.applied_version == before.version + 1
    assert fresh(dev).live_version == before.live_version
    # Only a release moves it, and the gateway follows.
    made = world.client("owner").post(
        releases_url(prod), {"version": 2, "changelog": "Staging's greeting"}, format="json"
    )
    assert made.status_code == 201, made.content
    assert (made.json()["stable_version"], made.json()["candidate_version"]) == (1, 2)
    assert answer(client, prod) == (2, "Hello from staging's v2.")


def test_release_api_checks_role_input_and_audits(world):
    _, prod = in_production(world.acme)
    tester = add_member(world.acme, "prod-manager@acme.test", stage_roles={"production": "manager"})
    manager = APIClient()
    manager.force_authenticate(tester)
    url = releases_url(prod)
    # Viewers of production read the history but may not release (403, audited).
    assert world.client("viewer").get(url).status_code == 200
    denied_before = AuditEvent.objects.for_org(world.acme).filter(action="access.denied").count()
    assert_envelope(world.client("viewer").post(url, {"version": 1, "changelog": "x"}, format="json"), 403)
    assert AuditEvent.objects.for_org(world.acme).filter(action="access.denied").count() == denied_before + 1
    # The developer has no role in production: the agent is missing, not forbidden.
    assert_envelope(world.client("developer").get(url), 404, "not_found")
    for body, field in (
        ({"version": 1, "changelog": "   "}, "changelog"),
        ({"version": 1}, "changelog"),
        ({"version": 7, "changelog": "no such"}, "version"),
        ({"version": 1, "changelog": "x", "strategy": "yolo"}, "strategy"),
        ({"version": "one", "changelog": "x"}, "version"),
        ({"version": 1, "changelog": "x", "steps": [{"weight": 100}]}, "strategy"),
    ):
        response = manager.post(url, body, format="json")
        error = assert_envelope(response, 400, "invalid")["error"]
        assert field in error["fields"], (body, error)
    # A canary compares with what is live, and nothing is live yet.
    canary = manager.post(url, {"version": 1, "changelog": "x", "strategy": "canary"}, format="json")
    assert "nothing is live" in assert_envelope(canary, 409, "conflict")["error"]["message"]
    assert fresh(prod).live_version is None
    made = manager.post(url, {"version": 1, "changelog": "Launch day"}, format="json")
    assert made.status_code == 201, made.content
    body = made.json()
    assert (body["status"], body["strategy"], body["weight"], body["candidate_version"]) == (
        "succeeded",
        "direct",
        100,
        1,
    )
    assert body["created_by"]["email"] == "prod-manager@acme.test" and made["ETag"]
    assert manager.get(url + f"{body['id']}/").json() == body
    assert fresh(prod).live_version == 1
    events = AuditEvent.objects.for_org(world.acme).filter(
        target_id=str(prod.pk), action__startswith="release."
    )
    assert sorted(e.action for e in events) == ["release.created", "release.succeeded"]
    assert {e.actor_email for e in events} == {"prod-manager@acme.test"}


def test_a_release_waits_for_approvals_when_the_stage_requires_them(world):
    _, prod = in_production(world.acme)
    production = Stage.objects.for_org(world.acme).get(slug="production")
    stage_policy_update(
        access=owner_access(world.acme), stage=production, document={"approvals": {"required": 1}}
    )
    response = world.client("owner").post(
        releases_url(prod), {"version": 1, "changelog": "Launch"}, format="json"
    )
    assert response.status_code == 202, response.content
    operation = response.json()["operation"]
    assert (operation["status"], operation["kind"]) == ("awaiting_approval", "agent.release")
    assert (
        fresh(prod).live_version is None
        and not Release.objects.for_org(world.acme).filter(agent=prod).exists()
    )
    # Once approved (issue 10), the operation makes it live; here it is run as the approval would.
    Operation.objects.for_org(world.acme).filter(pk=operation["id"]).update(status="queued")
    done = run_operation_now(Operation.objects.for_org(world.acme).get(pk=operation["id"]))
    assert done.status == "succeeded", done.error
    assert fresh(prod).live_version == 1


def test_the_gateway_is_409_not_live_for_an_agent_without_a_live_version(world):
    _, prod = in_production(world.acme)
    client = gateway_for(prod)
    body = assert_envelope(client.post(run_url(prod), {"user": "u"}, format="json"), 409, "not_live")
    assert "release" in body["error"]["message"]


def test_existing_agents_keep_serving_their_latest_version_after_the_migration(world):
    """The data migration: every agent's latest version is live, the last stage included."""
    from importlib import import_module

    _, prod = in_production(world.acme)
    dev = make_agent(world.acme)
    Agent.objects.for_org(world.acme).filter(pk__in=[prod.pk, dev.pk]).update(live_version=None)
    migration = import_module("agents.migrations.0002_agent_live_version")
    state = MigrationLoader(None, ignore_no_migrations=True).project_state(
        ("agents", "0002_agent_live_version")
    )
    migration.existing_agents_stay_live(state.apps, None)
    assert (fresh(prod).live_version, fresh(dev).live_version) == (1, 1)


def test_make_live_page_in_production_warns_keeps_input_and_releases(world):
    from tests.factories import signed_in

    _, prod = in_production(world.acme)
    owner = signed_in(world.users["owner"])
    page = owner.get(f"/orgs/acme/agents/{prod.pk}/").content.decode()
    assert "not live" in page and "Make live" in page and f"/orgs/acme/agents/{prod.pk}/releases/" in page
    listing = owner.get("/orgs/acme/agents/?stage=production").content.decode()
    assert '<span class="muted">not live</span>' in listing
    dialog = owner.get(f"/orgs/acme/agents/{prod.pk}/releases/").content.decode()
    assert "This changes what production users get now." in dialog
    assert "Nothing is live." in dialog and 'name="changelog"' in dialog and "requires releases" in dialog
    # A blank changelog is refused next to the form; the chosen version is kept.
    refused = owner.post(f"/orgs/acme/agents/{prod.pk}/releases/", {"version": "1", "changelog": "  "})
    assert refused.status_code == 200 and fresh(prod).live_version is None
    assert "Say what this release changes" in refused.content.decode()
    made = owner.post(f"/orgs/acme/agents/{prod.pk}/releases/", {"version": "1", "changelog": "Launch day"})
    assert made.status_code == 302 and fresh(prod).live_version == 1
    history = owner.get(made["Location"]).content.decode()
    assert "Launch day" in history and "owner@acme.test" in history and "version 1</strong>" in history
    listing = owner.get("/orgs/acme/agents/?stage=production").content.decode()
    assert '<span class="muted">not live</span>' not in listing and listing.count("<td>v1</td>") == 2


def test_viewers_see_the_history_but_no_make_live(world):
    from tests.factories import signed_in

    agent = make_agent(world.acme)
    viewer = signed_in(world.users["viewer"])
    assert "Make live" not in viewer.get(f"/orgs/acme/agents/{agent.pk}/").content.decode()
    page = viewer.get(f"/orgs/acme/agents/{agent.pk}/releases/").content.decode()
    assert "Created." in page and "make-live-form" not in page
    assert "This changes what production users get now." not in page
    denials = AuditEvent.objects.for_org(world.acme).filter(action="access.denied")
    before = denials.count()
    refused = viewer.post(f"/orgs/acme/agents/{agent.pk}/releases/", {"version": "1", "changelog": "x"})
    assert refused.status_code == 403
    assert denials.count() == before + 1
    assert Release.objects.for_org(world.acme).filter(agent=agent).count() == 1
    outsider = signed_in(world.users["outsider"])
    assert outsider.get(f"/orgs/acme/agents/{agent.pk}/releases/").status_code == 404


def test_the_releases_list_costs_the_same_queries_however_long(world):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    agent = make_agent(world.acme)
    client = world.client("owner")

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(releases_url(agent)).status_code == 200
        return len(captured)

    queries()  # the first request of a token also records its use
    short = queries()
    for i in range(10):
        version_save(access=owner_access(world.acme), agent=agent, changelog=f"save {i}")
    assert len(client.get(releases_url(agent)).json()["results"]) == 11
    assert queries() == short


def test_a_repeated_release_request_with_an_idempotency_key_releases_once(world):
    _, prod = in_production(world.acme)
    client = world.client("owner")
    body = {"version": 1, "changelog": "Launch"}
    first = client.post(releases_url(prod), body, format="json", HTTP_IDEMPOTENCY_KEY="launch-1")
    again = client.post(releases_url(prod), body, format="json", HTTP_IDEMPOTENCY_KEY="launch-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert Release.objects.for_org(world.acme).filter(agent=prod).count() == 1


def test_a_release_is_frozen_inside_a_window_and_refused_for_an_archived_agent(world):
    from datetime import timedelta

    from django.utils import timezone

    from agents.services.agents import agent_archive

    _, prod = in_production(world.acme)
    production = Stage.objects.for_org(world.acme).get(slug="production")
    now = timezone.now()
    window = {
        "kind": "once",
        "starts_at": (now - timedelta(hours=1)).isoformat(),
        "ends_at": (now + timedelta(hours=1)).isoformat(),
        "reason": "launch freeze",
    }
    stage_policy_update(
        access=owner_access(world.acme), stage=production, document={"freeze_windows": [window]}
    )
    url = releases_url(prod)
    frozen = assert_envelope(
        world.client("owner").post(url, {"version": 1, "changelog": "Launch"}, format="json"), 423, "frozen"
    )
    assert frozen["error"]["details"]["window"]["reason"] == "launch freeze"
    assert fresh(prod).live_version is None
    overridden = world.client("owner").post(
        url,
        {"version": 1, "changelog": "Launch", "override_freeze": {"reason": "CEO said so"}},
        format="json",
    )
    assert overridden.status_code == 201, overridden.content
    assert AuditEvent.objects.for_org(world.acme).filter(action="stage.freeze_overridden").exists()
    agent_archive(access=owner_access(world.acme), agent=fresh(prod))
    archived = world.client("owner").post(url, {"version": 1, "changelog": "Again"}, format="json")
    assert_envelope(archived, 409, "conflict")


def test_make_live_in_a_frozen_stage_says_so_and_only_an_override_with_a_reason_goes_ahead(world):
    from rollouts.tests.test_decision import open_now, set_policy
    from tests.factories import signed_in

    _, prod = in_production(world.acme)
    set_policy(world, "production", {"freeze_windows": [open_now("Black Friday")]})
    owner = signed_in(world.users["owner"])
    url = f"/orgs/acme/agents/{prod.pk}/releases/"
    page = owner.get(url).content.decode()
    assert (
        "Production is frozen until" in page and "Black Friday" in page and 'name="override_reason"' in page
    )
    refused = owner.post(url, {"version": "1", "changelog": "Launch day"})
    assert refused.status_code == 423 and fresh(prod).live_version is None
    assert "Launch day" in refused.content.decode()  # what was typed is kept
    made = owner.post(url, {"version": "1", "changelog": "Launch day", "override_reason": "Outage fix"})
    assert made.status_code == 302 and fresh(prod).live_version == 1
    override = AuditEvent.objects.for_org(world.acme).filter(action="stage.freeze_overridden").get()
    assert override.changes["reason"] == "Outage fix"
