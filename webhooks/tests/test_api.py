"""The webhooks API: owners and admins only, the secret write-only, bad input 4xx."""

from __future__ import annotations

import json

from lifecycle import crypto
from lifecycle.audit import AuditEvent
from tests.api_mixin import OrgScopedEndpointTests, assert_envelope
from tests.factories import owner_access
from tests.http_servers import Recorder
from webhooks.api import WebhookViewSet
from webhooks.models import Webhook
from webhooks.services.webhooks import webhook_create

LIST = "/api/v1/orgs/{org}/webhooks/"
DETAIL = "/api/v1/orgs/{org}/webhooks/{id}/"
SECRET = "whsec-0123456789abcdef"


def body(**extra):
    return {"url": "http://127.0.0.1:9/hook", "events": ["promotion.*"], "secret": SECRET, **extra}


class TestWebhookTenancy(OrgScopedEndpointTests):
    views = (WebhookViewSet,)
    list_url = LIST
    detail_url = DETAIL
    reader = "admin"
    creator = "admin"
    forbidden = ("developer", "GET", "list", None)
    etag_write = ("admin", "PATCH", {"description": "renamed"})
    create_payload = body(format="json", description="CI")

    def make_object(self, world, org) -> str:
        return str(webhook_create(access=owner_access(org), **body()).pk)


class TestWebhookDeliveriesTenancy(OrgScopedEndpointTests):
    views = ()
    list_url = LIST
    detail_url = DETAIL + "deliveries/"
    reader = "admin"
    listable = False
    forbidden = ("member", "GET", "detail", None)

    def make_object(self, world, org) -> str:
        return str(webhook_create(access=owner_access(org), **body()).pk)


def test_create_secret_is_write_only_encrypted_and_not_audited(world):
    client = world.client("owner")
    response = client.post(LIST.format(org="acme"), body(), format="json")
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["has_secret"] is True and data["events"] == ["promotion.*"] and data["format"] == "json"
    assert SECRET not in response.content.decode()
    assert SECRET not in client.get(DETAIL.format(org="acme", id=data["id"])).content.decode()
    assert SECRET not in client.get(LIST.format(org="acme")).content.decode()
    row = Webhook.objects.for_org(world.acme).get()
    assert SECRET not in row.secret_encrypted and crypto.decrypt(row.secret_encrypted) == SECRET
    event = AuditEvent.objects.for_org(world.acme).get(action="webhook.created")
    assert SECRET not in json.dumps(event.changes) and event.changes["secret_set"] is True


def test_update_keeps_or_replaces_the_secret_and_audits(world):
    client = world.client("admin")
    created = client.post(LIST.format(org="acme"), body(), format="json").json()
    url = DETAIL.format(org="acme", id=created["id"])
    response = client.patch(url, {"events": ["*"], "enabled": False}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["events"] == ["*"] and response.json()["enabled"] is False
    row = Webhook.objects.for_org(world.acme).get()
    assert crypto.decrypt(row.secret_encrypted) == SECRET
    client.patch(url, {"secret": "another-secret-1234567"}, format="json")
    row.refresh_from_db()
    assert crypto.decrypt(row.secret_encrypted) == "another-secret-1234567"
    changes = [e.changes for e in AuditEvent.objects.for_org(world.acme).filter(action="webhook.updated")]
    assert any("secret" in c["changed"] for c in changes)
    assert "another-secret" not in json.dumps(changes)
    assert client.delete(url).status_code == 204
    assert not Webhook.objects.for_org(world.acme).exists()
    assert AuditEvent.objects.for_org(world.acme).filter(action="webhook.deleted").count() == 1


def test_bad_input_is_400_with_the_field(world):
    client = world.client("owner")
    url = LIST.format(org="acme")
    cases = {
        "events": [body(events=["promotion.exploded"]), body(events=[]), body(events=["nope.*"])],
        "secret": [body(secret="short"), body(secret=None), body(secret="")],
        "format": [body(format="xml")],
        "url": [body(url="ftp://127.0.0.1/x"), body(url="http://10.0.0.1/hook"), body(url="not a url")],
    }
    for field, payloads in cases.items():
        for payload in payloads:
            response = client.post(url, payload, format="json")
            error = assert_envelope(response, 400)["error"]
            assert field in error["fields"], (payload, error)
    assert not Webhook.objects.for_org(world.acme).exists()


def test_slack_webhooks_need_no_secret(world):
    response = world.client("owner").post(
        LIST.format(org="acme"), body(format="slack", secret=None), format="json"
    )
    assert response.status_code == 201, response.content
    assert response.json()["has_secret"] is False


def test_members_and_stage_managers_cannot_see_webhooks(world):
    webhook_create(access=owner_access(world.acme), **body())
    for who in ("member", "developer", "viewer"):
        assert_envelope(world.client(who).get(LIST.format(org="acme")), 403, "forbidden")
        assert_envelope(world.client(who).post(LIST.format(org="acme"), body(), format="json"), 403)


def test_send_test_delivers_a_ping_and_logs_it(world, on_commit):
    with Recorder(lambda r, q: (200, {}, 0)) as server:
        created = world.client("admin").post(
            LIST.format(org="acme"), body(url=server.url + "/in", enabled=False), format="json"
        )
        webhook_id = created.json()["id"]
        response = on_commit(world.client("admin").post, DETAIL.format(org="acme", id=webhook_id) + "test/")
        assert response.status_code == 202, response.content
        assert response.json()["event"] == "ping"
        [request] = server.requests
    assert request["body"]["event"] == "ping" and request["path"] == "/in"
    log = world.client("admin").get(DETAIL.format(org="acme", id=webhook_id) + "deliveries/").json()
    [delivery] = log["results"]
    assert delivery["status"] == "succeeded" and delivery["event"] == "ping"
    assert delivery["attempts"][0]["status_code"] == 200 and delivery["attempts"][0]["number"] == 1


def test_rotate_secrets_re_encrypts_webhook_secrets(world, settings):
    from cryptography.fernet import Fernet
    from django.core.management import call_command

    webhook = webhook_create(access=owner_access(world.acme), **body())
    old_key = settings.ENCRYPTION_KEYS[0]
    new_key = Fernet.generate_key().decode()
    settings.ENCRYPTION_KEYS = [new_key, old_key]
    call_command("rotate_secrets")
    settings.ENCRYPTION_KEYS = [new_key]  # the old key is gone
    webhook.refresh_from_db()
    assert crypto.decrypt(webhook.secret_encrypted) == SECRET
