"""Back-port apply into a stage whose policy requires approvals: it waits as an operation
with its request, the reviewers see the hotfixes against the first stage, and only the
last approval applies them (three-way, as always)."""

from django.test import Client

from accounts.models import Stage
from agents.models import Component
from lifecycle.operations import Operation
from rollouts.models import Backport
from rollouts.policy import stage_policy_update
from rollouts.services.backport import backport_propose
from rollouts.tests.test_api_backport import hotfix, make_testing_agent
from tests.api_mixin import assert_envelope
from tests.factories import owner_access


def proposed(world):
    access = owner_access(world.acme)
    dev, testing = make_testing_agent(world.acme, access)
    hotfix(world, testing, access)
    uid = str(Component.objects.for_org(world.acme).get(agent=testing, name="faq").uid)
    backport = backport_propose(access=access, agent=testing, include=[uid], note="FAQ typo")
    development = Stage.objects.for_org(world.acme).get(slug="development")
    stage_policy_update(access=access, stage=development, document={"approvals": {"required": 1}})
    return dev, backport


def faq_answer(world, dev):
    spec = Component.objects.for_org(world.acme).get(agent=dev, name="faq").spec
    return spec["responses"]


def test_an_approved_back_port_is_applied_only_after_the_last_approval(world, on_commit):
    dev, backport = proposed(world)
    before = faq_answer(world, dev)
    asked = world.client("developer").post(
        f"/api/v1/orgs/acme/backports/{backport.pk}/apply/", {"confirm": "accept"}, format="json"
    )
    assert asked.status_code == 202, asked.content
    operation = asked.json()["operation"]
    assert operation["status"] == "awaiting_approval"
    approval = operation["result"]["approval"]
    # Nothing is applied while it waits.
    assert faq_answer(world, dev) == before
    assert Backport.objects.for_org(world.acme).get(pk=backport.pk).status == "open"

    packet = world.client("admin").get(f"/api/v1/orgs/acme/approvals/{approval}/").json()
    assert packet["kind"] == "backport" and packet["required"] == 1
    (item,) = packet["evidence"]["diff"]["items"]
    assert item["name"] == "faq" and item["change"] == "updated"
    assert item["after"]["responses"] == ["Hotfixed answer."]
    browser = Client()
    browser.force_login(world.users["admin"])
    page = browser.get(f"/orgs/acme/approvals/{approval}/")
    assert page.status_code == 200 and "Hotfixed answer." in page.content.decode()
    # The one who asked may not approve it.
    assert_envelope(
        world.client("developer").post(f"/api/v1/orgs/acme/approvals/{approval}/approve/", {}, format="json"),
        403,
    )
    decided = on_commit(
        world.client("admin").post,
        f"/api/v1/orgs/acme/approvals/{approval}/approve/",
        {"comment": "ok"},
        format="json",
    )
    assert decided.status_code == 200, decided.content
    ran = Operation.objects.for_org(world.acme).get(pk=operation["id"])
    assert ran.status == "succeeded", ran.error
    applied = Backport.objects.for_org(world.acme).get(pk=backport.pk)
    assert applied.status == "applied" and ran.result["version"] == applied.applied_version
    assert faq_answer(world, dev) == ["Hotfixed answer."]


def test_a_rejected_back_port_stays_open_and_unapplied(world, on_commit):
    dev, backport = proposed(world)
    before = faq_answer(world, dev)
    asked = world.client("developer").post(
        f"/api/v1/orgs/acme/backports/{backport.pk}/apply/", {"confirm": "accept"}, format="json"
    )
    operation = asked.json()["operation"]
    # A second apply of the same proposal while one waits: refused, not queued twice.
    again = world.client("developer").post(
        f"/api/v1/orgs/acme/backports/{backport.pk}/apply/", {"confirm": "accept"}, format="json"
    )
    assert_envelope(again, 409)
    rejected = on_commit(
        world.client("admin").post,
        f"/api/v1/orgs/acme/approvals/{operation['result']['approval']}/reject/",
        {"comment": "Not this week."},
        format="json",
    )
    assert rejected.status_code == 200, rejected.content
    assert Operation.objects.for_org(world.acme).get(pk=operation["id"]).status == "cancelled"
    assert Backport.objects.for_org(world.acme).get(pk=backport.pk).status == "open"
    assert faq_answer(world, dev) == before


def test_a_bad_overwrite_is_refused_before_anyone_is_asked(world):
    _, backport = proposed(world)
    response = world.client("developer").post(
        f"/api/v1/orgs/acme/backports/{backport.pk}/apply/",
        {"confirm": "accept", "overwrite": ["00000000-0000-0000-0000-000000000001"]},
        format="json",
    )
    assert "overwrite" in assert_envelope(response, 400)["error"]["fields"]
    assert not Operation.objects.for_org(world.acme).filter(kind="agent.backport").exists()
