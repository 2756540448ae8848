"""The Webhooks pages and the Notifications page."""

from __future__ import annotations

from lifecycle.audit import AuditEvent
from rollouts.services.backport import backport_propose
from tests.factories import add_component, make_agent, owner_access, promote, signed_in, skill
from tests.http_servers import Recorder
from webhooks.events import event_emit
from webhooks.models import Delivery, Webhook
from webhooks.notifications import notifications_for, unread_count
from webhooks.services.webhooks import webhook_create

SECRET = "page-secret-0123456789"


def form(url, **extra):
    return {
        "url": url,
        "events": "promotion.* gate.failed",
        "format": "json",
        "secret": SECRET,
        "enabled": "on",
        **extra,
    }


def test_admin_adds_tests_and_deletes_a_webhook(world, on_commit):
    client = signed_in(world.users["admin"])
    with Recorder(lambda r, q: (200, {}, 0)) as server:
        response = client.post("/orgs/acme/webhooks/", form(server.url + "/in"))
        assert response.status_code == 302, response.content.decode()[:2000]
        webhook = Webhook.objects.for_org(world.acme).get()
        assert webhook.events == ["promotion.*", "gate.failed"]
        page = client.get(f"/orgs/acme/webhooks/{webhook.pk}/").content.decode()
        assert SECRET not in page and 'hx-confirm="Delete the webhook' in page
        on_commit(client.post, f"/orgs/acme/webhooks/{webhook.pk}/", {"action": "test"})
        assert [r["body"]["event"] for r in server.requests] == ["ping"]
    page = client.get(f"/orgs/acme/webhooks/{webhook.pk}/").content.decode()
    assert "<code>ping</code>" in page and "HTTP 200" in page
    listing = client.get("/orgs/acme/webhooks/").content.decode()
    assert server.url in listing and SECRET not in listing
    assert client.post(f"/orgs/acme/webhooks/{webhook.pk}/", {"action": "delete"}).status_code == 302
    assert not Webhook.objects.for_org(world.acme).exists()


def test_edit_keeps_the_secret_when_left_empty_and_shows_errors(world):
    client = signed_in(world.users["owner"])
    webhook = webhook_create(
        access=owner_access(world.acme), url="http://127.0.0.1:9/", events=["*"], secret=SECRET
    )
    before = webhook.secret_encrypted
    response = client.post(
        f"/orgs/acme/webhooks/{webhook.pk}/", form("http://127.0.0.1:9/x", secret="", action="save")
    )
    assert response.status_code == 302
    webhook.refresh_from_db()
    assert webhook.url == "http://127.0.0.1:9/x" and webhook.secret_encrypted == before
    bad = client.post(f"/orgs/acme/webhooks/{webhook.pk}/", form("http://127.0.0.1:9/", events="nope.*"))
    assert bad.status_code == 200 and "Unknown events" in bad.content.decode()


def test_members_cannot_open_the_webhooks_pages(world):
    webhook = webhook_create(
        access=owner_access(world.acme), url="http://127.0.0.1:9/", events=["*"], secret=SECRET
    )
    for who in ("member", "developer"):
        client = signed_in(world.users[who])
        assert client.get("/orgs/acme/webhooks/").status_code == 403
        assert client.get(f"/orgs/acme/webhooks/{webhook.pk}/").status_code == 403
        assert client.post(f"/orgs/acme/webhooks/{webhook.pk}/", {"action": "delete"}).status_code == 403
        assert "/webhooks/" not in client.get("/orgs/acme/").content.decode()
    assert Webhook.objects.for_org(world.acme).exists()
    assert AuditEvent.objects.for_org(world.acme).filter(action="access.denied").count() >= 4
    assert Delivery.objects.for_org(world.acme).count() == 0


def test_notifications_follow_stage_roles(world):
    event_emit(
        org=world.acme,
        event="approval.requested",
        data={"approval": "a1", "agent": "x", "agent_name": "Bot", "target_stage": "testing"},
    )
    event_emit(
        org=world.acme,
        event="approval.requested",
        data={"approval": "a2", "agent": "x", "agent_name": "Bot", "target_stage": "production"},
    )
    event_emit(org=world.acme, event="gate.failed", data={"agent": "x", "target_stage": "testing"})
    event_emit(org=world.globex, event="approval.requested", data={"target_stage": "testing"})
    tester, developer, owner = (world.access(w) for w in ("tester", "developer", "owner"))
    # The tester manages Testing; the developer manages only Development.
    assert [e.data["approval"] for e in notifications_for(tester)] == ["a1"]
    assert list(notifications_for(developer)) == []
    assert sorted(e.data["approval"] for e in notifications_for(owner)) == ["a1", "a2"]
    [theirs] = notifications_for(world.access("outsider", world.globex))
    assert theirs.org_id == world.globex.pk


def test_a_promotion_and_a_backport_notify_their_stages_not_their_author(world):
    access = owner_access(world.acme)
    dev = make_agent(world.acme, "Support", access=access)
    add_component(dev, "skill", "faq", skill(["faq"]))
    testing = promote(dev, access=world.access("tester"))
    # The tester promoted it: not told of their own doing. The owner (every stage) is.
    assert not notifications_for(world.access("tester")).filter(event="promotion.succeeded").exists()
    assert notifications_for(world.access("owner")).filter(event="promotion.succeeded").exists()
    from agents.models import Component
    from agents.services.components import component_update

    component = Component.objects.for_org(world.acme).get(agent=testing, name="faq")
    component_update(access=world.access("tester"), component=component, spec=skill(["faq"], ["Hot."]))
    backport_propose(access=world.access("tester"), agent=testing, include=[str(component.uid)])
    # Back-ports wait for Development: its manager (the developer) hears of it.
    assert notifications_for(world.access("developer")).filter(event="backport.proposed").exists()
    assert not notifications_for(world.access("viewer")).filter(event="backport.proposed").exists()


def test_unread_count_in_the_nav_and_mark_all_read(world):
    event_emit(
        org=world.acme,
        event="approval.requested",
        data={"approval": "a1", "agent": "x", "agent_name": "Bot", "target_stage": "testing"},
    )
    client = signed_in(world.users["tester"])
    assert unread_count(world.access("tester")) == 1
    overview = client.get("/orgs/acme/").content.decode()
    assert 'aria-label="1 unread"' in overview
    page = client.get("/orgs/acme/notifications/").content.decode()
    assert "Approval requested" in page and "Bot" in page and "Mark all as read" in page
    assert client.post("/orgs/acme/notifications/").status_code == 302
    assert unread_count(world.access("tester")) == 0
    assert "unread" not in client.get("/orgs/acme/").content.decode().split("Notifications", 1)[1][:80]


def test_an_approval_request_links_to_its_page_and_skips_its_requester(world):
    data = {
        "approval": "a9",
        "agent": "x",
        "agent_name": "Bot",
        "target_stage": "testing",
        "requested_by": {"id": "u", "email": "tester@acme.test"},
        "url": "/orgs/acme/approvals/a9/",
    }
    event_emit(org=world.acme, event="approval.requested", data=data)
    assert not notifications_for(world.access("tester")).exists()
    page = signed_in(world.users["admin"]).get("/orgs/acme/notifications/").content.decode()
    assert 'href="/orgs/acme/approvals/a9/"' in page
