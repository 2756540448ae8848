"""A canary secret never leaves the server in the clear."""

import json
import logging

from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection

from agents.models import Component, ComponentContent
from agents.secrets import reveal
from agents.services.components import component_update
from agents.services.versions import version_save
from lifecycle.audit import AuditEvent
from tests.factories import add_component, make_agent, owner_access

CANARY = "canary-7f3a9c-super-secret"


def _make_agent_with_secret(world):
    agent = make_agent(world.acme, access=world.access("developer"))
    client = world.client("developer")
    created = client.post(
        f"/api/v1/orgs/acme/agents/{agent.pk}/components/",
        {"kind": "variable", "name": "CRM_API_KEY", "spec": {"value": CANARY, "secret": True}},
        format="json",
    )
    assert created.status_code == 201, created.content
    return agent, created.json()


def test_a_canary_secret_never_appears_anywhere(world, caplog):
    caplog.set_level(logging.DEBUG)
    agent, created = _make_agent_with_secret(world)
    client = world.client("developer")
    base = f"/api/v1/orgs/acme/agents/{agent.pk}/"
    assert created["spec"] == {"secret": True, "value": None, "is_set": True}
    client.post(base + "versions/", {"changelog": "with secret"}, format="json")
    component_update(
        access=world.access("developer"),
        component=Component.objects.for_org(world.acme).get(agent=agent, kind="variable"),
        spec={"value": CANARY + "-2", "secret": True},
    )
    client.post(base + "versions/", {"changelog": "rotated the key"}, format="json")
    seen = [
        client.get(base).content,
        client.get(base + "components/").content,
        client.get(base + "versions/").content,
        client.get(base + "versions/2/").content,
        client.get(base + "versions/3/diff/", {"against": 2}).content,
        client.get(base + "export/").content,
        world.client("admin").get("/api/v1/orgs/acme/audit/").content,
        b"".join(world.client("admin").get("/api/v1/orgs/acme/audit/", {"format": "csv"}).streaming_content),
    ]
    for body in seen:
        assert CANARY.encode() not in body
    audit = json.dumps([e.changes for e in AuditEvent.objects.for_org(world.acme)])
    assert CANARY not in audit
    assert CANARY not in caplog.text
    # ...while the runtime can still read it.
    stored = Component.objects.for_org(world.acme).get(agent=agent, kind="variable")
    assert reveal(stored.spec)["value"] == CANARY + "-2"


def test_the_database_holds_ciphertext(world):
    agent, _ = _make_agent_with_secret(world)
    version_save(access=owner_access(world.acme), agent=agent)
    with connection.cursor() as cursor:
        cursor.execute("SELECT spec FROM agents_component WHERE kind = 'variable'")
        raw_component = str(cursor.fetchall())
        cursor.execute("SELECT spec FROM agents_componentcontent WHERE kind = 'variable'")
        raw_content = str(cursor.fetchall())
    assert CANARY not in raw_component and "$secret" in raw_component
    assert CANARY not in raw_content and "$secret" in raw_content


def test_a_patch_without_value_keeps_the_secret(world):
    agent, created = _make_agent_with_secret(world)
    url = f"/api/v1/orgs/acme/agents/{agent.pk}/components/{created['uid']}/"
    client = world.client("developer")
    # Sent back exactly as read (value null, is_set true): nothing changes.
    same = client.patch(url, {"spec": created["spec"]}, format="json")
    assert same.status_code == 200 and same.json()["content_hash"] == created["content_hash"]
    renamed = client.patch(url, {"name": "CRM_KEY"}, format="json")
    assert renamed.json()["spec"]["is_set"] is True
    stored = Component.objects.for_org(world.acme).get(agent=agent, kind="variable")
    assert reveal(stored.spec)["value"] == CANARY
    # Making it a plain variable needs a new value: the old one is never shown.
    refused = client.patch(url, {"spec": {"secret": False}}, format="json")
    assert refused.status_code == 400 and "spec.value" in refused.json()["error"]["fields"]


def test_rotation_keeps_every_secret_readable(world, settings):
    agent, _ = _make_agent_with_secret(world)
    version_save(access=owner_access(world.acme), agent=agent)
    old_key = settings.ENCRYPTION_KEYS[0]
    before_hash = Component.objects.for_org(world.acme).get(agent=agent, kind="variable").content_hash
    new_key = Fernet.generate_key().decode()
    settings.ENCRYPTION_KEYS = [new_key, old_key]
    call_command("rotate_secrets")
    settings.ENCRYPTION_KEYS = [new_key]  # the old key is gone
    component = Component.objects.for_org(world.acme).get(agent=agent, kind="variable")
    content = ComponentContent.objects.for_org(world.acme).get(kind="variable")
    assert reveal(component.spec)["value"] == CANARY
    assert reveal(content.spec)["value"] == CANARY
    assert component.content_hash == before_hash


def test_hashes_ignore_key_order_and_see_every_change(world):
    agent = make_agent(world.acme)
    a = add_component(agent, "skill", "x", {"responses": ["r"], "utterances": ["u"]})
    # In another agent: one agent holds one skill of a name.
    b = add_component(make_agent(world.acme), "skill", "y", {"utterances": ["u"], "responses": ["r"]})
    assert a.content_hash != b.content_hash  # different names
    b2 = component_update(access=owner_access(world.acme), component=b, name="x")
    assert b2.content_hash == a.content_hash
    s1 = add_component(agent, "variable", "S1", {"value": "one", "secret": True})
    s2 = add_component(agent, "variable", "S2", {"value": "one", "secret": True})
    assert s1.spec["value"] != s2.spec["value"]  # encrypted with fresh randomness
    before = s2.content_hash
    s2 = component_update(
        access=owner_access(world.acme), component=s2, spec={"value": "two", "secret": True}
    )
    assert s2.content_hash != before  # a secret's change shows in the hash, not its value


def test_a_patch_of_a_secret_spec_without_the_value_key_keeps_it(world):
    # API.md: "A PATCH without `value` keeps the stored secret" (it answered 400 spec.value).
    agent, created = _make_agent_with_secret(world)
    url = f"/api/v1/orgs/acme/agents/{agent.pk}/components/{created['uid']}/"
    kept = world.client("developer").patch(url, {"spec": {"secret": True}}, format="json")
    assert kept.status_code == 200, kept.content
    assert kept.json()["spec"] == {"secret": True, "value": None, "is_set": True}
    assert kept.json()["content_hash"] == created["content_hash"]
    stored = Component.objects.for_org(world.acme).get(agent=agent, kind="variable")
    assert reveal(stored.spec)["value"] == CANARY
    # A plain variable's value is kept the same way; a new one without a value is empty.
    plain = world.client("developer").post(
        f"/api/v1/orgs/acme/agents/{agent.pk}/components/",
        {"kind": "variable", "name": "REGION", "spec": {"value": "eu"}},
        format="json",
    )
    plain_url = f"/api/v1/orgs/acme/agents/{agent.pk}/components/{plain.json()['uid']}/"
    same = world.client("developer").patch(plain_url, {"spec": {"secret": False}}, format="json")
    assert same.json()["spec"]["value"] == "eu"
    empty = world.client("developer").post(
        f"/api/v1/orgs/acme/agents/{agent.pk}/components/",
        {"kind": "variable", "name": "EMPTY", "spec": {}},
        format="json",
    )
    assert empty.status_code == 201 and empty.json()["spec"]["value"] == ""
