"""One name per kind in an agent: API, UI, import and the database all refuse a second."""

import pytest
from django.db import IntegrityError, transaction
from django.test import Client

from agents.models import Component
from tests.api_mixin import assert_envelope
from tests.factories import add_component, make_agent, skill


def url(agent, uid=""):
    return f"/api/v1/orgs/acme/agents/{agent.pk}/components/" + (f"{uid}/" if uid else "")


def test_a_second_skill_of_the_same_name_is_400_on_name(world):
    agent = make_agent(world.acme, access=world.access("developer"))
    client = world.client("developer")
    first = client.post(url(agent), {"kind": "skill", "name": "greet", "spec": skill()}, format="json")
    assert first.status_code == 201
    again = client.post(url(agent), {"kind": "skill", "name": "greet", "spec": skill(["hey"])}, format="json")
    assert assert_envelope(again, 400)["error"]["fields"]["name"] == [
        "This agent already has a skill named 'greet'."
    ]
    other = client.post(url(agent), {"kind": "skill", "name": "bye", "spec": skill(["bye"])}, format="json")
    renamed = client.patch(url(agent, other.json()["uid"]), {"name": "greet"}, format="json")
    assert "name" in assert_envelope(renamed, 400)["error"]["fields"]
    # Another kind may use the name; so may another agent.
    knowledge = {"title": "Greeting", "body": "Say hello."}
    assert (
        client.post(
            url(agent), {"kind": "knowledge", "name": "greet", "spec": knowledge}, format="json"
        ).status_code
        == 201
    )
    elsewhere = make_agent(world.acme, access=world.access("developer"))
    assert (
        client.post(
            url(elsewhere), {"kind": "skill", "name": "greet", "spec": skill()}, format="json"
        ).status_code
        == 201
    )
    assert Component.objects.for_org(world.acme).filter(agent=agent, kind="skill", name="greet").count() == 1


def test_the_database_refuses_duplicates_too(world):
    agent = make_agent(world.acme)
    first = add_component(agent, "skill", "greet", skill())
    with pytest.raises(IntegrityError), transaction.atomic():
        Component.objects.create(
            org=world.acme, agent=agent, kind="skill", name="greet", spec=first.spec, content_hash="x"
        )


def test_an_import_with_two_skills_of_one_name_is_400(world):
    document = {
        "format_version": 1,
        "name": "Twins",
        "components": [
            {"kind": "skill", "name": "greet", "spec": skill()},
            {"kind": "skill", "name": "greet", "spec": skill(["hey"])},
        ],
    }
    response = world.client("developer").post("/api/v1/orgs/acme/agents/import/", document, format="json")
    assert "components.1.name" in assert_envelope(response, 400)["error"]["fields"]


def test_the_skills_form_shows_the_clash_on_the_name_field(world):
    agent = make_agent(world.acme, access=world.access("developer"))
    add_component(agent, "skill", "greet", skill(), access=world.access("developer"))
    client = Client()
    client.force_login(world.users["developer"])
    page = client.post(
        f"/orgs/acme/agents/{agent.pk}/m/skills/",
        {"new-name": "greet", "new-utterances": "hey", "new-responses": "Hello!"},
    )
    assert page.status_code == 200
    assert "already has a skill named" in page.content.decode()
    assert Component.objects.for_org(world.acme).filter(agent=agent, kind="skill").count() == 1
