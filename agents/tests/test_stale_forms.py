"""UI saves are conditional on the hash the form was rendered from: a stale save is shown."""

import re

from django.test import Client

from agents.models import Component
from agents.services.components import component_update
from tests.factories import add_component, make_agent, skill


def signed_in(user):
    client = Client()
    client.force_login(user)
    return client


def test_a_stale_save_shows_both_versions_and_keeps_the_typing(world):
    access = world.access("developer")
    agent = make_agent(world.acme, access=access)
    greet = add_component(agent, "skill", "greet", skill(["hello"], ["Hi there!"]), access=access)
    client = signed_in(world.users["developer"])
    url = f"/orgs/acme/agents/{agent.pk}/m/skills/"
    page = client.get(url).content.decode()
    prefix = str(greet.uid)
    seen = re.search(rf'name="{prefix}-seen" value="([0-9a-f]+)"', page).group(1)
    assert seen == greet.content_hash
    # Someone else saves meanwhile.
    component_update(access=world.access("owner"), component=greet, spec=skill(["hello"], ["Their answer."]))
    mine = {
        "uid": prefix,
        f"{prefix}-name": "greet",
        f"{prefix}-seen": seen,
        f"{prefix}-utterances": "hello",
        f"{prefix}-responses": "My answer.",
    }
    stale = client.post(url, mine)
    body = stale.content.decode()
    assert stale.status_code == 200 and "Someone saved this since you opened it" in body
    assert "Their answer." in body and "My answer." in body  # both versions, typing kept
    saved = Component.objects.for_org(world.acme).get(pk=greet.pk)
    assert saved.spec["responses"] == ["Their answer."]
    # The form now carries the newer hash: saving again replaces theirs, knowingly.
    assert f'name="{prefix}-seen" value="{saved.content_hash}"' in body
    again = client.post(url, {**mine, f"{prefix}-seen": saved.content_hash})
    assert again.status_code == 302
    assert Component.objects.for_org(world.acme).get(pk=greet.pk).spec["responses"] == ["My answer."]


def test_the_settings_form_is_conditional_too(world):
    access = world.access("developer")
    agent = make_agent(world.acme, access=access)
    settings = Component.objects.for_org(world.acme).get(agent=agent, kind="settings")
    client = signed_in(world.users["developer"])
    url = f"/orgs/acme/agents/{agent.pk}/"
    page = client.get(url).content.decode()
    seen = re.search(r'name="seen" value="([0-9a-f]+)"', page).group(1)
    component_update(
        access=world.access("owner"), component=settings, spec={**settings.spec, "fallback": "Theirs."}
    )
    body = client.post(
        url,
        {"seen": seen, "instructions": "Mine.", "language": "en", "engine": "builtin", "fallback": "Mine."},
    ).content.decode()
    assert "Someone saved this since you opened it" in body
    assert Component.objects.for_org(world.acme).get(pk=settings.pk).spec["fallback"] == "Theirs."
