"""Pull updates: every category, exclude and overwrite, variables untouched, CSV."""

import csv
import io

from agents.models import Agent, AgentVersion, Component
from agents.services.components import component_delete, component_update
from agents.tests.helpers import AgentChildTests
from lifecycle.operations import Operation
from rollouts.api.views import PullView
from tests.api_mixin import assert_envelope
from tests.factories import add_component, knowledge, make_agent, promote, skill

PULL = "/api/v1/orgs/{org}/agents/{agent}/pull/"


class TestPullTenancy(AgentChildTests):
    views = (PullView,)
    list_url = PULL
    reader = "tester"
    listable = False
    forbidden = ("viewer", "POST", "list", {"confirm": "accept", "changelog": "A changelog"})
    create_payload = {
        "confirm": "accept",
        "exclude": [],
        "overwrite": [],
        "changelog": "x",
        "acknowledge_editors": True,
    }
    creator = "tester"

    def agent_in(self, world, org):
        cache = world.__dict__.setdefault("_testing_agents", {})
        if org.pk not in cache:
            cache[org.pk] = promote(make_agent(org))
        return cache[org.pk]

    def count(self, world):
        return Operation.objects.for_org(world.acme).count()


def c(agent, name):
    return Component.objects.for_org(agent.org_id).get(agent=agent, name=name)


def scenario(world):
    """The issue's story: a developer's agent, promoted by the tester, then changed on both sides."""
    dev_access, tester_access = world.access("developer"), world.access("tester")
    dev = make_agent(world.acme, "Support", access=dev_access)
    for name in ("greet", "order", "refund", "bye", "hotfixed"):
        add_component(dev, "skill", name, skill([name]), access=dev_access)
    add_component(dev, "knowledge", "returns", knowledge(), access=dev_access)
    add_component(
        dev, "variable", "CRM_URL", {"value": "https://crm.dev", "secret": False}, access=dev_access
    )
    testing = promote(dev, tester_access)
    # The developer changes two skills and deletes one.
    component_update(access=dev_access, component=c(dev, "greet"), spec=skill(["hello there"]))
    component_update(access=dev_access, component=c(dev, "order"), spec=skill(["where is my order"]))
    component_delete(access=dev_access, component=c(dev, "bye"))
    # The tester hotfixes a third in Testing.
    component_update(
        access=tester_access, component=c(testing, "hotfixed"), spec=skill(["hotfix"], ["Fixed in QA."])
    )
    return dev, testing


def url(agent, **query):
    base = PULL.format(org=agent.org.slug, agent=agent.pk)
    return base + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def test_the_done_when_story(world, on_commit):
    _dev, testing = scenario(world)
    tester = world.client("tester")
    preview = tester.get(url(testing)).json()
    assert preview["counts"] == {"created": 0, "updated": 2, "deleted": 1, "conflict": 1}
    conflict = next(i for i in preview["items"] if i["change"] == "conflict")
    assert conflict["name"] == "hotfixed" and conflict["source_changed"] is False
    assert preview["by_kind"] == {"skill": {"created": 0, "updated": 2, "deleted": 1, "conflict": 1}}
    assert tester.get(f"/api/v1/orgs/acme/agents/{testing.pk}/").json()["updates_available"] is True

    applied = on_commit(
        tester.post, url(testing), {"confirm": "accept", "changelog": "Pulled dev fixes"}, format="json"
    )
    assert applied.status_code == 202, applied.content
    operation = Operation.objects.for_org(world.acme).get(pk=applied.json()["operation"]["id"])
    assert operation.status == "succeeded", operation.error
    assert (
        operation.result["conflicts_kept"] == 1
        and operation.result["updated"] == 2
        and operation.result["deleted"] == 1
    )
    assert c(testing, "hotfixed").spec["responses"] == ["Fixed in QA."]  # the hotfix survives
    assert c(testing, "greet").spec["utterances"] == ["hello there"]
    assert not Component.objects.for_org(world.acme).filter(agent=testing, name="bye").exists()
    version = AgentVersion.objects.for_org(world.acme).get(agent=testing, number=2)
    assert (version.reason, version.changelog) == ("pull", "Pulled dev fixes")
    after = tester.get(url(testing)).json()
    assert after["counts"] == {"created": 0, "updated": 0, "deleted": 0, "conflict": 1}
    assert tester.get(f"/api/v1/orgs/acme/agents/{testing.pk}/").json()["updates_available"] is False


def test_created_tombstones_target_local_and_source_changed_conflicts(world, on_commit):
    dev, testing = scenario(world)
    dev_access, tester_access = world.access("developer"), world.access("tester")
    add_component(dev, "knowledge", "shipping", knowledge("Shipping", "3-5 days"), access=dev_access)
    add_component(testing, "skill", "qa-only", skill(["qa"]), access=tester_access)
    component_delete(access=tester_access, component=c(testing, "refund"))  # deleted in the target: tombstone
    component_update(access=dev_access, component=c(dev, "hotfixed"), spec=skill(["dev side"]))
    preview = world.client("tester").get(url(testing)).json()
    by_name = {i["name"]: i for i in preview["items"]}
    assert by_name["shipping"]["change"] == "created" and by_name["shipping"]["selectable"] is True
    assert "refund" not in by_name  # not offered again
    assert "qa-only" not in by_name  # only in the target: kept, not listed
    assert by_name["hotfixed"] == {**by_name["hotfixed"], "change": "conflict", "source_changed": True}
    assert "CRM_URL" not in by_name  # variables are never pulled
    on_commit(
        world.client("tester").post,
        url(testing),
        {"confirm": "accept", "changelog": "A changelog"},
        format="json",
    )
    assert (
        c(testing, "qa-only")
        and not Component.objects.for_org(world.acme).filter(agent=testing, name="refund").exists()
    )
    assert c(testing, "shipping").synced_hash == c(dev, "shipping").content_hash


def test_exclude_knowledge_and_overwrite_a_conflict(world, on_commit):
    dev, testing = scenario(world)
    dev_access = world.access("developer")
    add_component(dev, "knowledge", "shipping", knowledge("Shipping", "3-5 days"), access=dev_access)
    component_update(access=dev_access, component=c(dev, "returns"), spec=knowledge("Returns", "60 days now"))
    preview = world.client("tester").get(url(testing)).json()
    uid = {i["name"]: i["uid"] for i in preview["items"]}
    assert {i["name"] for i in preview["items"] if i["selectable"]} == {"shipping", "returns"}
    body = {
        "confirm": "accept",
        "changelog": "A changelog",
        "exclude": [uid["shipping"]],
        "overwrite": [uid["hotfixed"]],
    }
    on_commit(world.client("tester").post, url(testing), body, format="json")
    assert not Component.objects.for_org(world.acme).filter(agent=testing, name="shipping").exists()
    assert c(testing, "returns").spec["body"] == "60 days now"
    assert c(testing, "hotfixed").content_hash == c(dev, "hotfixed").content_hash  # overwritten
    still = world.client("tester").get(url(testing)).json()
    assert [(i["name"], i["change"]) for i in still["items"]] == [("shipping", "created")]


def test_bad_exclude_and_overwrite_are_400(world):
    _dev, testing = scenario(world)
    preview = world.client("tester").get(url(testing)).json()
    uid = {i["name"]: i["uid"] for i in preview["items"]}
    client = world.client("tester")
    body = assert_envelope(
        client.post(
            url(testing),
            {"confirm": "accept", "changelog": "A changelog", "exclude": [uid["greet"]]},
            format="json",
        ),
        400,
    )
    assert "exclude" in body["error"]["fields"]
    body = assert_envelope(
        client.post(
            url(testing),
            {"confirm": "accept", "changelog": "A changelog", "overwrite": [uid["greet"]]},
            format="json",
        ),
        400,
    )
    assert "overwrite" in body["error"]["fields"]
    assert not Operation.objects.for_org(world.acme).filter(kind="agent.pull").exists()


def test_variables_are_untouched_by_a_pull(world, on_commit):
    dev, testing = scenario(world)
    dev_access, tester_access = world.access("developer"), world.access("tester")
    component_update(
        access=tester_access,
        component=c(testing, "CRM_URL"),
        spec={"value": "https://crm.qa", "secret": False},
    )
    component_update(
        access=dev_access, component=c(dev, "CRM_URL"), spec={"value": "https://crm.dev2", "secret": False}
    )
    add_component(dev, "variable", "NEW_VAR", {"value": "x", "secret": False}, access=dev_access)
    on_commit(
        world.client("tester").post,
        url(testing),
        {"confirm": "accept", "changelog": "A changelog"},
        format="json",
    )
    assert c(testing, "CRM_URL").spec["value"] == "https://crm.qa"
    assert not Component.objects.for_org(world.acme).filter(agent=testing, name="NEW_VAR").exists()


def test_csv_download(world):
    _dev, testing = scenario(world)
    response = world.client("tester").get(url(testing, format="csv"))
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["uid", "kind", "name", "change", "source_changed", "selectable", "fields_changed"]
    assert sorted((r[2], r[3]) for r in rows[1:]) == [
        ("bye", "deleted"),
        ("greet", "updated"),
        ("hotfixed", "conflict"),
        ("order", "updated"),
    ]


def test_pull_needs_a_manager_and_a_previous_stage(world):
    dev, testing = scenario(world)
    assert_envelope(
        world.client("viewer").post(
            url(testing), {"confirm": "accept", "changelog": "A changelog"}, format="json"
        ),
        403,
    )
    assert_envelope(world.client("developer").get(url(dev)), 409, "conflict")
    assert_envelope(
        world.client("tester").post(
            url(testing), {"confirm": "yes", "changelog": "A changelog"}, format="json"
        ),
        400,
    )
    Agent.objects.for_org(world.acme).filter(pk=dev.pk).update(archived_at=dev.created_at)
    assert_envelope(world.client("tester").get(url(testing)), 409, "conflict")


def test_a_new_component_named_like_one_the_target_keeps_is_a_conflict_kept_unless_overwritten(
    world, on_commit
):
    """Names are unique per kind in an agent: Testing's own "escalate" and Development's new
    "escalate" cannot both be there. The pull shows the clash with both contents, keeps
    Testing's, and replaces it only when named in `overwrite` (it failed with a 500-like
    'internal' operation error before)."""
    dev, testing = scenario(world)
    dev_access, tester_access = world.access("developer"), world.access("tester")
    add_component(testing, "skill", "escalate", skill(["ask a person"]), access=tester_access)
    add_component(dev, "skill", "escalate", skill(["talk to a human"]), access=dev_access)
    add_component(dev, "knowledge", "shipping", knowledge("Shipping", "3-5 days"), access=dev_access)
    tester = world.client("tester")
    preview = tester.get(url(testing)).json()
    clash = next(i for i in preview["items"] if i["name"] == "escalate")
    assert clash["change"] == "conflict" and clash["replaces"] == str(c(testing, "escalate").uid)
    assert clash["before"]["utterances"] == ["ask a person"]
    assert clash["after"]["utterances"] == ["talk to a human"]
    from tests.factories import signed_in

    page = signed_in(world.users["tester"]).get(f"/orgs/acme/agents/{testing.pk}/pull/").content.decode()
    assert "Replace Testing's own “escalate” with Development's" in page

    kept = on_commit(
        tester.post, url(testing), {"confirm": "accept", "changelog": "Keep ours"}, format="json"
    )
    operation = Operation.objects.for_org(world.acme).get(pk=kept.json()["operation"]["id"])
    assert operation.status == "succeeded", operation.error
    assert c(testing, "escalate").spec["utterances"] == ["ask a person"]
    assert c(testing, "shipping")  # the rest of the pull went in

    body = {"confirm": "accept", "changelog": "Take theirs", "overwrite": [clash["uid"]]}
    on_commit(tester.post, url(testing), body, format="json")
    replaced = c(testing, "escalate")
    assert str(replaced.uid) == clash["uid"] and replaced.content_hash == c(dev, "escalate").content_hash
    assert not [i for i in tester.get(url(testing)).json()["items"] if i["name"] == "escalate"]
