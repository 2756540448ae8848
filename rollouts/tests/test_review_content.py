"""Reviewers see the content they approve: pull, back-port, drift and version diff."""

import csv
import io

from agents.models import Component
from agents.readable import SECRET_CHANGED, SECRET_UNCHANGED, side_by_side, spec_lines
from agents.secrets import seal
from agents.services.components import component_update
from agents.services.versions import version_save
from rollouts.models import Backport
from rollouts.services.backport import backport_propose
from tests.factories import add_component, make_agent, promote, skill


def c(agent, name):
    return Component.objects.for_org(agent.org_id).get(agent=agent, name=name)


def test_a_spec_reads_as_lines_never_as_a_python_repr():
    lines = spec_lines("greet", skill(["hello", "hi"], ["Hi there!"], patterns=[]))
    assert lines == [
        "name: greet",
        "patterns: (none)",
        "responses:",
        "  - Hi there!",
        "utterances:",
        "  - hello",
        "  - hi",
    ]
    assert not any("[" in line or "'" in line for line in lines)


def test_side_by_side_marks_changed_lines_and_keeps_equal_ones():
    rows = side_by_side("skill", ("greet", skill(["hello"])), ("greet", skill(["hello", "hey"], ["Hello!"])))
    by_op = {}
    for row in rows:
        by_op.setdefault(row["op"], []).append((row["before"], row["after"]))
    assert ("  - Hi there!", "  - Hello!") in by_op["changed"]
    assert (None, "  - hey") in by_op["added"]
    assert ("name: greet", "name: greet") in by_op["equal"]


def test_secrets_show_only_whether_they_changed():
    old = seal("variable", {"value": "canary-old", "secret": True})
    new = seal("variable", {"value": "canary-new", "secret": True})
    same = seal("variable", {"value": "canary-old", "secret": True})
    changed = side_by_side("variable", ("TOKEN", old), ("TOKEN", new))
    unchanged = side_by_side("variable", ("TOKEN", old), ("TOKEN", same))
    assert "canary" not in str(changed) + str(unchanged)
    assert {
        "op": "equal",
        "before": f"value: {SECRET_CHANGED}",
        "after": f"value: {SECRET_CHANGED}",
    } in changed
    assert f"value: {SECRET_UNCHANGED}" in [r["before"] for r in unchanged]


def story(world):
    dev_access = world.access("developer")
    dev = make_agent(world.acme, "Support", access=dev_access)
    add_component(dev, "skill", "greet", skill(["hello"]), access=dev_access)
    testing = promote(dev, world.access("tester"))
    component_update(
        access=dev_access, component=c(dev, "greet"), spec=skill(["hello", "good morning"], ["Welcome!"])
    )
    return dev, testing


def test_pull_preview_carries_both_specs_and_the_changed_fields(world):
    _dev, testing = story(world)
    tester = world.client("tester")
    preview = tester.get(f"/api/v1/orgs/acme/agents/{testing.pk}/pull/").json()
    (item,) = preview["items"]
    assert item["before"]["utterances"] == ["hello"] and item["after"]["utterances"] == [
        "hello",
        "good morning",
    ]
    assert item["fields_changed"] == ["responses", "utterances"]
    rows = list(
        csv.DictReader(
            io.StringIO(
                tester.get(f"/api/v1/orgs/acme/agents/{testing.pk}/pull/?format=csv").content.decode()
            )
        )
    )
    assert rows[0]["fields_changed"] == "responses utterances"


def test_pull_page_shows_the_content_side_by_side(world):
    _dev, testing = story(world)
    world.client("tester")  # the API token is not a session; sign in for the page
    from django.test import Client

    client = Client()
    client.force_login(world.users["tester"])
    page = client.get(f"/orgs/acme/agents/{testing.pk}/pull/").content.decode()
    assert "good morning" in page and "Welcome!" in page
    assert 'class="sbs"' in page and "op-changed" in page
    assert "[&#x27;" not in page and "['" not in page


def test_backport_page_shows_the_hotfix_and_offers_to_overwrite_conflicts(world):
    from django.test import Client

    dev, testing = story(world)
    tester_access = world.access("tester")
    component_update(access=tester_access, component=c(testing, "greet"), spec=skill(["hello"], ["QA fix."]))
    backport = backport_propose(access=tester_access, agent=testing, include=[str(c(testing, "greet").uid)])
    client = Client()
    client.force_login(world.users["developer"])
    page = client.get("/orgs/acme/backports/").content.decode()
    # Development moved on (good morning / Welcome!) after the hotfix's base: a conflict.
    assert "change-conflict" in page and "QA fix." in page and "Welcome!" in page
    assert f'name="overwrite" value="{c(testing, "greet").uid}"' in page
    client.post(
        "/orgs/acme/backports/",
        {"backport": str(backport.pk), "confirm": "accept", "overwrite": [str(c(testing, "greet").uid)]},
    )
    assert Backport.objects.for_org(world.acme).get().status == "applied"
    assert c(dev, "greet").spec["responses"] == ["QA fix."]


def test_version_diff_shows_content_with_secrets_masked(world):
    from django.test import Client

    access = world.access("developer")
    agent = make_agent(world.acme, access=access)
    add_component(agent, "skill", "greet", skill(["hello"]), access=access)
    add_component(agent, "variable", "TOKEN", {"value": "canary-one", "secret": True}, access=access)
    version_save(access=access, agent=agent, changelog="first")
    component_update(access=access, component=c(agent, "greet"), spec=skill(["hello", "hey there"]))
    component_update(access=access, component=c(agent, "TOKEN"), spec={"value": "canary-two", "secret": True})
    version_save(access=access, agent=agent, changelog="second")
    body = (
        world.client("developer")
        .get(f"/api/v1/orgs/acme/agents/{agent.pk}/versions/3/diff/?against=2")
        .json()
    )
    by_name = {i["name"]: i for i in body["items"]}
    assert by_name["greet"]["before"]["utterances"] == ["hello"]
    assert by_name["greet"]["after"]["utterances"] == ["hello", "hey there"]
    assert by_name["TOKEN"]["after"] == {"secret": True, "value": None, "is_set": True}
    client = Client()
    client.force_login(world.users["developer"])
    page = client.get(f"/orgs/acme/agents/{agent.pk}/versions/", {"a": 2, "b": 3}).content.decode()
    assert "hey there" in page and SECRET_CHANGED in page
    assert "canary" not in str(body) + page
