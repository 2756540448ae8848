"""Test data, made through the real services so it looks like production data."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from rest_framework.test import APIClient

from accounts.models import Organization, User
from accounts.services.auth import token_create
from accounts.services.members import member_add
from accounts.services.orgs import org_create
from lifecycle.access import Access, access_for

PASSWORD = "correct-horse-battery"
_seq = itertools.count(1)


def make_user(email: str | None = None, password: str = PASSWORD) -> User:
    return User.objects.create_user(email=email or f"user{next(_seq)}@example.test", password=password)


def make_org(owner: User | None = None, name: str | None = None, slug: str | None = None) -> Organization:
    owner = owner or make_user()
    n = next(_seq)
    return org_create(actor=owner, name=name or f"Org {n}", slug=slug or f"org-{n}")


def owner_access(org: Organization) -> Access:
    from accounts.models import Membership

    owner = Membership.objects.for_org(org).filter(role="owner").select_related("user").first().user
    return access_for(owner, org)


def add_member(org: Organization, email: str | None = None, role: str = "member", stage_roles=None) -> User:
    membership = member_add(
        access=owner_access(org),
        email=email or f"member{next(_seq)}@example.test",
        role=role,
        password=PASSWORD,
        stage_roles=stage_roles or {},
    )
    return membership.user


def api_client(user: User | None = None) -> APIClient:
    client = APIClient()
    if user is not None:
        _, key = token_create(user=user, name="test")
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


@dataclass
class World:
    """Two orgs, with one user per role in the first and a member of the second only."""

    acme: Organization
    globex: Organization
    users: dict[str, User] = field(default_factory=dict)
    _clients: dict = field(default_factory=dict)

    def client(self, who: str) -> APIClient:
        if who not in self._clients:
            self._clients[who] = api_client(self.users[who] if who != "anonymous" else None)
        return self._clients[who]

    def access(self, who: str, org: Organization | None = None) -> Access:
        return access_for(self.users[who], org or self.acme)


def make_world() -> World:
    owner = make_user("owner@acme.test")
    acme = make_org(owner, "Acme", "acme")
    globex_owner = make_user("owner@globex.test")
    globex = make_org(globex_owner, "Globex", "globex")
    users = {
        "owner": owner,
        "admin": add_member(acme, "admin@acme.test", "admin"),
        "developer": add_member(acme, "developer@acme.test", stage_roles={"development": "manager"}),
        "tester": add_member(
            acme, "tester@acme.test", stage_roles={"development": "viewer", "testing": "manager"}
        ),
        "viewer": add_member(
            acme,
            "viewer@acme.test",
            stage_roles={s: "viewer" for s in ("development", "testing", "staging", "production")},
        ),
        "member": add_member(acme, "member@acme.test"),
        "outsider": globex_owner,
    }
    return World(acme=acme, globex=globex, users=users)


# --- agents ---------------------------------------------------------------------------
SETTINGS = {
    "instructions": "You are Acme's helpful support agent.",
    "first_message": "Hi! How can I help?",
    "language": "en",
    "engine": "builtin",
}


def make_agent(org: Organization, name: str | None = None, access: Access | None = None, settings=None):
    from agents.services.agents import agent_create

    return agent_create(
        access=access or owner_access(org),
        name=name or f"Agent {next(_seq)}",
        description="A test agent.",
        settings=settings or SETTINGS,
    )


def add_component(agent, kind: str, name: str, spec: dict, access: Access | None = None):
    from agents.services.components import component_create

    return component_create(
        access=access or owner_access(agent.org), agent=agent, kind=kind, name=name, spec=spec
    )


def skill(utterances=("hello",), responses=("Hi there!",), **extra) -> dict:
    return {"utterances": list(utterances), "responses": list(responses), **extra}


def knowledge(title="Returns", body="You can return items within 30 days.") -> dict:
    return {"title": title, "body": body}


def run_operation_now(operation):
    """Run an operation's task here and now, as the worker would."""
    from lifecycle.operations import Operation, operation_execute

    operation_execute(org_id=str(operation.org_id), operation_id=str(operation.pk))
    return Operation.objects.for_org(operation.org_id).get(pk=operation.pk)


def promote(agent, access: Access | None = None, changelog: str = ""):
    """Promote `agent` into the next stage and return the clone."""
    from agents.models import Agent
    from rollouts.services.promotion import agent_promote

    operation = agent_promote(
        access=access or owner_access(agent.org),
        agent=agent,
        confirm="accept",
        changelog=changelog,
        acknowledge_editors=True,
    )
    done = run_operation_now(operation)
    assert done.status == "succeeded", done.error
    return Agent.objects.for_org(agent.org_id).get(pk=done.result["agent"]["id"])


def signed_in(user):
    """A browser-like Django test client with `user`'s session."""
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client
