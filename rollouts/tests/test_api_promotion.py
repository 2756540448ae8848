"""Promote: every precondition and its status, and what the clone holds."""

from agents.models import Agent, AgentVersion, Component
from agents.services.presence import presence_heartbeat
from agents.tests.helpers import AgentChildTests
from lifecycle.audit import AuditEvent
from lifecycle.operations import Operation
from rollouts.api.views import PromoteView
from tests.api_mixin import assert_envelope
from tests.factories import add_component, knowledge, make_agent, promote, run_operation_now, skill

PROMOTE = "/api/v1/orgs/{org}/agents/{agent}/promote/"


class TestPromoteTenancy(AgentChildTests):
    views = (PromoteView,)
    list_url = PROMOTE
    reader = "tester"
    probe = ("POST", {"confirm": "accept", "changelog": "A changelog"})
    listable = False
    forbidden = ("viewer", "POST", "list", {"confirm": "accept", "changelog": "A changelog"})
    create_payload = {"confirm": "accept", "changelog": "Ready for testing", "acknowledge_editors": True}
    creator = "tester"

    def count(self, world):
        return Operation.objects.for_org(world.acme).count()


def full_agent(world):
    agent = make_agent(world.acme, "Support", access=world.access("developer"))
    add_component(agent, "skill", "greet", skill())
    add_component(agent, "knowledge", "returns", knowledge())
    add_component(
        agent,
        "tool",
        "lookup",
        {"description": "d", "parameters": {"type": "object"}, "response": {"ok": True}},
    )
    add_component(agent, "variable", "CRM_URL", {"value": "https://crm.dev", "secret": False})
    add_component(agent, "variable", "CRM_KEY", {"value": "dev-secret", "secret": True})
    add_component(agent, "channel", "web", {"type": "web", "config": {"color": "blue"}})
    add_component(agent, "persona", "tone", {"description": "warm"})
    add_component(agent, "notification", "ops", {"events": ["x"], "target": "ops@acme.test"})
    add_component(agent, "live_agent_message", "hours", {"type": "working_hours", "text": "9-5"})
    return agent


def url(agent):
    return PROMOTE.format(org=agent.org.slug, agent=agent.pk)


def test_promote_makes_an_exact_clone_per_the_policy(world, on_commit):
    source = full_agent(world)
    response = on_commit(
        world.client("tester").post, url(source), {"confirm": "accept", "changelog": "For QA"}, format="json"
    )
    assert response.status_code == 202, response.content
    operation = Operation.objects.for_org(world.acme).get(pk=response.json()["operation"]["id"])
    assert operation.status == "succeeded" and operation.progress == 100
    result = operation.result
    clone = Agent.objects.for_org(world.acme).get(pk=result["agent"]["id"])
    assert result["agent"]["stage"] == "testing" and result["agent"]["owner"]["email"] == "tester@acme.test"
    assert clone.lineage_id == source.lineage_id and clone.source_agent_id == source.pk
    assert (clone.name, clone.description, clone.version) == (source.name, source.description, 1)
    version = AgentVersion.objects.for_org(world.acme).get(agent=clone)
    assert (version.reason, version.changelog, version.source_version.agent_id) == (
        "promote",
        "For QA",
        source.pk,
    )

    def contents(agent):
        return {
            (str(c.uid), c.kind, c.name, c.content_hash)
            for c in Component.objects.for_org(world.acme).filter(agent=agent)
        }

    copied = {row for row in contents(source) if row[1] not in ("persona", "notification")}
    assert contents(clone) == copied
    assert {c.kind for c in Component.objects.for_org(world.acme).filter(agent=clone)} == {
        "settings",
        "skill",
        "knowledge",
        "tool",
        "variable",
        "channel",
        "live_agent_message",
    }
    for component in Component.objects.for_org(world.acme).filter(agent=clone):
        assert component.synced_hash == component.content_hash
        assert component.needs_review == (component.kind == "variable")
    assert sorted(v["name"] for v in result["variables_to_review"]) == ["CRM_KEY", "CRM_URL"]
    assert (
        AuditEvent.objects.for_org(world.acme)
        .filter(action="agent.promote", target_id=str(clone.pk))
        .exists()
    )


def test_preconditions_in_order(world, on_commit):
    source = full_agent(world)
    tester, viewer = world.client("tester"), world.client("viewer")
    # 401, then 404 for what you cannot see, then 403 for what you may not do.
    assert_envelope(
        world.client("anonymous").post(
            url(source), {"confirm": "nope", "changelog": "A changelog"}, format="json"
        ),
        401,
    )
    assert_envelope(
        world.client("member").post(
            url(source), {"confirm": "nope", "changelog": "A changelog"}, format="json"
        ),
        404,
    )
    assert_envelope(
        viewer.post(url(source), {"confirm": "nope", "changelog": "A changelog"}, format="json"), 403
    )
    # 400 unless the confirmation is exactly "accept".
    for confirm in ("", "Accept", "accept ", "yes"):
        body = assert_envelope(
            tester.post(url(source), {"confirm": confirm, "changelog": "x"}, format="json"), 400
        )
        assert body["error"]["fields"] == {"confirm": ['Type "accept" to confirm.']}
    # 428 while others edit it, listing who and what (the caller does not count).
    presence_heartbeat(access=world.access("developer"), agent=source, module="skills")
    busy = assert_envelope(
        tester.post(url(source), {"confirm": "accept", "changelog": "A changelog"}, format="json"),
        428,
        "editors_active",
    )
    assert [(e["user"]["email"], e["module"]) for e in busy["error"]["details"]["editors"]] == [
        ("developer@acme.test", "skills")
    ]
    ok = on_commit(
        tester.post,
        url(source),
        {"confirm": "accept", "changelog": "A changelog", "acknowledge_editors": True},
        format="json",
    )
    assert ok.status_code == 202
    # 409 once the lineage has an active agent in the next stage.
    again = assert_envelope(
        tester.post(
            url(source),
            {"confirm": "accept", "changelog": "A changelog", "acknowledge_editors": True},
            format="json",
        ),
        409,
        "conflict",
    )
    assert "archive it to promote again" in again["error"]["message"]


def test_a_reserved_promotion_is_a_409_before_the_clone_exists(world):
    source = full_agent(world)
    first = world.client("tester").post(
        url(source), {"confirm": "accept", "changelog": "A changelog"}, format="json"
    )  # queued, not run
    assert first.status_code == 202 and first.json()["operation"]["status"] == "queued"
    second = world.client("admin").post(
        url(source), {"confirm": "accept", "changelog": "A changelog"}, format="json"
    )
    body = assert_envelope(second, 409, "conflict")
    assert "already under way" in body["error"]["message"]


def test_archive_then_promote_again(world):
    source = full_agent(world)
    clone = promote(source, world.access("tester"))
    world.client("tester").delete(f"/api/v1/orgs/acme/agents/{clone.pk}/")
    again = promote(source, world.access("tester"))
    assert again.pk != clone.pk and again.version == 1


def test_the_last_stage_has_nowhere_to_go(world):
    agent = make_agent(world.acme)
    current = agent
    for _ in range(3):
        current = promote(current, world.access("admin"))
    assert current.stage.slug == "production"
    assert_envelope(
        world.client("admin").post(
            url(current), {"confirm": "accept", "changelog": "A changelog"}, format="json"
        ),
        409,
        "conflict",
    )


def test_promote_query_count_does_not_depend_on_component_count(world, django_assert_max_num_queries):
    small = make_agent(world.acme)
    add_component(small, "knowledge", "k0", knowledge())
    from rollouts.services.promotion import agent_promote

    op = agent_promote(access=world.access("admin"), agent=small, confirm="accept")
    # The budget includes the outbox events (promotion, and the clone's first release).
    with django_assert_max_num_queries(70) as few:
        run_operation_now(op)
    big = make_agent(world.acme)
    for n in range(40):
        add_component(big, "knowledge", f"k{n}", knowledge(title=f"T{n}"))
    op = agent_promote(access=world.access("admin"), agent=big, confirm="accept")
    with django_assert_max_num_queries(len(few.captured_queries)):
        run_operation_now(op)
