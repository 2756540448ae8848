"""Every denied decision is in the audit log: pages, services' refusals on pages, CSRF,
sign-ins, WebSocket closes (4403, 4404). Where no org is known, it is logged instead."""

import asyncio
import logging

import pytest
from django.test import Client

from accounts.models import Membership
from accounts.services.members import member_update
from lifecycle.audit import AuditEvent
from tests.factories import PASSWORD, make_agent, make_world, owner_access, signed_in


def denials(org, action="access.denied"):
    return list(AuditEvent.objects.for_org(org).filter(action=action).order_by("created_at"))


def test_a_services_refusal_shown_on_a_page_is_audited(world):
    agent = make_agent(world.acme, access=world.access("developer"))  # developer owns it
    membership = Membership.objects.for_org(world.acme).get(user=world.users["developer"])
    member_update(
        access=owner_access(world.acme), membership=membership, stage_roles={"development": "viewer"}
    )
    client = signed_in(world.users["developer"])
    url = f"/orgs/acme/agents/{agent.pk}/sharing/"
    response = client.post(url, {"user": "developer@acme.test", "permissions": ["view", "change", "delete"]})
    assert response.status_code == 302  # back to the page, with the refusal flashed
    [entry] = denials(world.acme)
    assert entry.actor_id == world.users["developer"].pk
    assert entry.changes["path"] == url and "share" in entry.changes["reason"]


def test_a_page_rule_denial_is_audited_once(world):
    response = signed_in(world.users["viewer"]).post("/orgs/acme/members/", {"email": "x@acme.test"})
    assert response.status_code == 403
    [entry] = denials(world.acme)
    assert entry.changes["reason"] == "page rule"


def test_an_outsider_on_an_orgs_page_is_404_and_audited(world):
    response = signed_in(world.users["outsider"]).get("/orgs/acme/agents/")
    assert response.status_code == 404
    [entry] = denials(world.acme)
    assert entry.changes["reason"] == "not a member" and entry.actor_id == world.users["outsider"].pk
    assert signed_in(world.users["outsider"]).get("/orgs/no-such-org/agents/").status_code == 404


def test_csrf_failures_are_audited_and_answered_403(world, caplog):
    agent = make_agent(world.acme)
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.users["owner"])
    page = client.post(f"/orgs/acme/agents/{agent.pk}/sharing/", {"user": "member@acme.test"})
    assert page.status_code == 403
    api = client.post("/api/v1/orgs/acme/agents/", {"name": "x"}, content_type="application/json")
    assert api.status_code == 403
    assert api.json()["error"]["code"] == "forbidden" and "CSRF" in api.json()["error"]["message"]
    entries = denials(world.acme)
    assert [e.changes["reason"][:5] for e in entries] == ["CSRF:", "CSRF:"]
    assert {e.changes["path"] for e in entries} == {
        f"/orgs/acme/agents/{agent.pk}/sharing/",
        "/api/v1/orgs/acme/agents/",
    }
    # Anonymous: no org's log is written (anyone could fill it), but it is logged.
    with caplog.at_level(logging.WARNING, logger="lifecycle.denials"):
        anonymous = Client(enforce_csrf_checks=True).post("/orgs/acme/agents/", {})
    assert anonymous.status_code == 403
    assert len(denials(world.acme)) == 2
    assert any(r.getMessage() == "csrf failure" for r in caplog.records)


def test_failed_sign_ins_are_audited_without_the_password(world, caplog):
    client = Client()
    response = client.post("/login/", {"email": "owner@acme.test", "password": "wrong-secret-guess"})
    assert response.status_code == 200 and "_auth_user_id" not in client.session
    api = Client().post(
        "/api/v1/auth/token/",
        {"email": "OWNER@acme.test", "password": "another-guess"},
        content_type="application/json",
    )
    assert api.status_code == 401
    entries = denials(world.acme, "auth.login_failed")
    assert len(entries) == 2
    assert all(e.target_id == str(world.users["owner"].pk) and e.actor_id is None for e in entries)
    assert "guess" not in str([e.changes for e in entries])
    assert not denials(world.globex, "auth.login_failed")
    # A right password is no denial.
    assert Client().post("/login/", {"email": "owner@acme.test", "password": PASSWORD}).status_code == 302
    assert len(denials(world.acme, "auth.login_failed")) == 2
    # Nobody has this email: no org to attach it to, so it is logged (no password).
    with caplog.at_level(logging.WARNING, logger="lifecycle.denials"):
        Client().post("/login/", {"email": "nobody@nowhere.test", "password": "secret-guess"})
    [record] = [r for r in caplog.records if r.getMessage() == "auth.login_failed"]
    assert record.email == "nobody@nowhere.test" and not record.known_account
    assert "secret-guess" not in str(record.__dict__)


@pytest.mark.django_db(transaction=True)
async def test_websocket_4404_for_a_hidden_agent_or_an_outsider_is_audited():
    from accounts.services.auth import token_create
    from agents.tests.test_consumer import closed_with, connect, path

    world = await asyncio.to_thread(make_world)
    agent = await asyncio.to_thread(lambda: make_agent(world.acme, "Console bot"))
    member = await asyncio.to_thread(lambda: token_create(user=world.users["member"], name="ws")[1])
    outsider = await asyncio.to_thread(lambda: token_create(user=world.users["outsider"], name="ws")[1])
    assert await closed_with(await connect(path("acme", agent.pk) + f"?token={member}")) == 4404
    assert await closed_with(await connect(path("acme", agent.pk) + f"?token={outsider}")) == 4404
    entries = await asyncio.to_thread(lambda: denials(world.acme))
    assert [(e.actor_id, e.changes["reason"]) for e in entries] == [
        (world.users["member"].pk, "no role in stage"),
        (world.users["outsider"].pk, "not a member"),
    ]
    # A missing agent is no denial of anything.
    missing = "00000000-0000-0000-0000-000000000000"
    assert await closed_with(await connect(path("acme", missing) + f"?token={member}")) == 4404
    assert len(await asyncio.to_thread(lambda: denials(world.acme))) == 2


def test_an_agent_page_hidden_by_stage_is_404_and_audited(world):
    agent = make_agent(world.acme)  # in Development: the member holds no role there
    client = signed_in(world.users["member"])
    assert client.get(f"/orgs/acme/agents/{agent.pk}/versions/").status_code == 404
    [entry] = denials(world.acme)
    assert entry.changes["reason"] == "no role in stage"
    missing = "00000000-0000-0000-0000-000000000000"
    assert client.get(f"/orgs/acme/agents/{missing}/versions/").status_code == 404
    assert len(denials(world.acme)) == 1
    assert (
        signed_in(world.users["developer"]).get(f"/orgs/acme/agents/{agent.pk}/versions/").status_code == 200
    )
