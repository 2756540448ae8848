"""A changelog is asked for wherever history is written by a person: blank ones are refused."""

import pytest
from django.test import Client

from agents.models import AgentVersion
from tests.api_mixin import assert_envelope
from tests.factories import add_component, make_agent, promote, skill


def signed_in(user):
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("changelog", [None, "", "   \n\t"])
def test_the_api_refuses_a_missing_or_blank_changelog(world, changelog):
    access = world.access("developer")
    dev = make_agent(world.acme, access=access)
    add_component(dev, "skill", "greet", skill(), access=access)
    testing = promote(dev, world.access("tester"), changelog="For QA")
    extra = {} if changelog is None else {"changelog": changelog}
    base = f"/api/v1/orgs/acme/agents/{dev.pk}/"
    before = AgentVersion.objects.for_org(world.acme).count()
    cases = [
        (world.client("developer"), base + "versions/", {}),
        (world.client("developer"), base + "restore/", {"version": 1}),
        (world.client("tester"), f"/api/v1/orgs/acme/agents/{testing.pk}/pull/", {"confirm": "accept"}),
        (world.client("admin"), f"/api/v1/orgs/acme/agents/{testing.pk}/promote/", {"confirm": "accept"}),
    ]
    for client, url, body in cases:
        response = client.post(url, {**body, **extra}, format="json")
        assert "changelog" in assert_envelope(response, 400)["error"]["fields"], url
    assert AgentVersion.objects.for_org(world.acme).count() == before


def test_the_ui_refuses_a_blank_changelog_and_keeps_nothing_half_done(world):
    access = world.access("developer")
    dev = make_agent(world.acme, access=access)
    add_component(dev, "skill", "greet", skill(), access=access)
    developer = signed_in(world.users["developer"])
    versions = f"/orgs/acme/agents/{dev.pk}/versions/"
    page = developer.post(versions, {"changelog": "  "}, follow=True).content.decode()
    assert "Write a changelog" in page
    page = developer.post(versions, {"restore": "1", "changelog": ""}, follow=True).content.decode()
    assert "Write a changelog" in page
    assert AgentVersion.objects.for_org(world.acme).filter(agent=dev).count() == 1
    # The promote dialog answers in place, keeping what was typed.
    tester = signed_in(world.users["tester"])
    dialog = tester.post(
        f"/orgs/acme/agents/{dev.pk}/promote/",
        {"confirm": "accept", "changelog": " ", "acknowledge_editors": "on"},
    )
    assert dialog.status_code == 200 and "Write a changelog" in dialog.content.decode()
