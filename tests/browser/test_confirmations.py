"""Cancel cancels: every destructive button asks first, and dismissing the dialog changes nothing.

For each action the dialog is dismissed (no request may leave the page, and a reload shows
the object untouched), then accepted (the action happens). The objects are made fresh for
this test so the demo data other browser tests read is left alone.
"""

from __future__ import annotations

import json
import subprocess
import uuid

from playwright.sync_api import expect

from .conftest import PYTHON, ROOT, sign_in

SETUP = """
import json
from accounts.models import Organization, Stage, User
from accounts.services.auth import token_create
from accounts.services.members import member_add
from accounts.services.stages import stage_create
from agents.services.agents import agent_create
from agents.services.components import component_create
from agents.services.grants import grant_set
from agents.services.versions import version_save
from lifecycle.access import access_for
from rollouts.services.keys import stage_key_create

tag = {tag!r}
org = Organization.objects.get(slug="acme")
admin = User.objects.get(email="admin@acme.test")
access = access_for(admin, org)
agent = agent_create(access=access, name="Confirm bot " + tag, settings={{"instructions": "Help."}})
component_create(access=access, agent=agent, kind="skill", name="greet-" + tag,
                 spec={{"utterances": ["hello"], "responses": ["Hi!"]}})
version_save(access=access, agent=agent, changelog="With a greeting")
grant_set(access=access, agent=agent, user_ref="viewer@acme.test", permissions=["view"])
member_add(access=access, email="gone-" + tag + "@acme.test", role="member", password="a-strong-password-1",
           stage_roles={{}})
member_add(access=access, email="leaver-" + tag + "@acme.test", role="member", password="a-strong-password-1",
           stage_roles={{}})
stage = stage_create(access=access, name="Scratch " + tag)
development = Stage.objects.for_org(org).get(slug="development")
stage_key_create(access=access, stage=development, name="Widget " + tag)
token_create(user=admin, name="Script " + tag)
print(json.dumps({{"agent": str(agent.pk), "stage": stage.slug}}))
"""


def seed(stack, tag: str) -> dict:
    done = subprocess.run(
        [PYTHON, "manage.py", "shell", "-c", SETUP.format(tag=tag)],
        cwd=ROOT,
        env=stack["env"],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


class Dialogs:
    """Answers every dialog as told, and counts the POSTs the page sends."""

    def __init__(self, page):
        self.answer = "dismiss"
        self.messages: list[str] = []
        self.posts = 0
        page.on("dialog", self._on_dialog)
        page.on("request", self._on_request)

    def _on_dialog(self, dialog):
        self.messages.append(dialog.message)
        dialog.accept() if self.answer == "accept" else dialog.dismiss()

    def _on_request(self, request):
        if request.method == "POST":
            self.posts += 1


def cancel_then_confirm(page, dialogs: Dialogs, click, *, asks: str, unchanged, changed) -> None:
    """Click, dismiss: nothing sent, nothing changed. Click, accept: it happened."""
    dialogs.answer = "dismiss"
    seen, posts = len(dialogs.messages), dialogs.posts
    click()
    page.wait_for_timeout(400)  # a request, had one left, would be on its way by now
    assert len(dialogs.messages) == seen + 1, "the action did not ask first"
    assert asks in dialogs.messages[-1], dialogs.messages[-1]
    assert dialogs.posts == posts, "Cancel still sent the request"
    page.reload()
    unchanged()
    dialogs.answer = "accept"
    click()
    changed()
    assert len(dialogs.messages) == seen + 2


def test_every_destructive_action_asks_and_cancel_changes_nothing(page, stack):
    tag = uuid.uuid4().hex[:6]
    ids = seed(stack, tag)
    agent = f"/orgs/acme/agents/{ids['agent']}/"
    sign_in(page, "admin@acme.test")
    dialogs = Dialogs(page)

    # Component delete.
    page.goto(agent + "m/skills/")
    component = page.locator("details.component").filter(has_text=f"greet-{tag}")

    def delete_component():
        component.locator("summary").click()
        component.get_by_role("button", name="Delete").click()

    cancel_then_confirm(
        page,
        dialogs,
        delete_component,
        asks=f"Delete greet-{tag}?",
        unchanged=lambda: expect(component).to_have_count(1),
        changed=lambda: expect(page.get_by_text(f"Deleted greet-{tag}.")).to_be_visible(),
    )
    expect(component).to_have_count(0)

    # Version restore (v1 of 3 versions: created, saved, and nothing else yet).
    page.goto(agent + "versions/")
    restore = page.locator("table.versions").get_by_role("button", name="Restore").last
    rows = page.locator("table.versions tbody tr")
    expect(rows).to_have_count(2)

    def restore_v1():
        # A restore asks for a changelog; the page reload after Cancel empties the field.
        page.get_by_label("Why restore v1?").fill("Back to the first version")
        restore.click()

    cancel_then_confirm(
        page,
        dialogs,
        restore_v1,
        asks="Restore v1?",
        unchanged=lambda: expect(rows).to_have_count(2),
        changed=lambda: expect(page.get_by_text("Restored version 1 as version 3.")).to_be_visible(),
    )
    expect(rows).to_have_count(3)

    # Stop sharing.
    page.goto(agent + "sharing/")
    grant_row = page.get_by_role("row").filter(has_text="viewer@acme.test")
    cancel_then_confirm(
        page,
        dialogs,
        lambda: grant_row.get_by_role("button", name="Stop sharing").click(),
        asks="Stop sharing",
        unchanged=lambda: expect(grant_row).to_have_count(1),
        changed=lambda: expect(page.get_by_text("Stopped sharing with viewer@acme.test.")).to_be_visible(),
    )
    expect(grant_row).to_have_count(0)

    # Archive, then the way back.
    page.goto(agent)
    cancel_then_confirm(
        page,
        dialogs,
        lambda: page.get_by_role("button", name="Archive").click(),
        asks=f"Archive Confirm bot {tag}?",
        unchanged=lambda: expect(page.get_by_role("button", name="Archive")).to_be_visible(),
        changed=lambda: expect(page.get_by_text(f"Archived Confirm bot {tag}.")).to_be_visible(),
    )
    page.get_by_role("link", name="Show archived agents").click()
    page.get_by_role("link", name=f"Confirm bot {tag}").click()
    page.get_by_role("button", name="Unarchive").click()
    expect(page.get_by_text(f"Unarchived Confirm bot {tag}.")).to_be_visible()
    expect(page.get_by_role("button", name="Archive")).to_be_visible()

    # Member remove.
    page.goto("/orgs/acme/members/")
    member_row = page.get_by_role("row").filter(has_text=f"gone-{tag}@acme.test")
    cancel_then_confirm(
        page,
        dialogs,
        lambda: member_row.get_by_role("button", name="Remove").click(),
        asks=f"Remove gone-{tag}@acme.test from Acme Corp?",
        unchanged=lambda: expect(member_row).to_have_count(1),
        changed=lambda: expect(member_row).to_have_count(0),
    )

    # Stage key revoke.
    page.goto("/orgs/acme/stages/development/keys/")
    key_row = page.get_by_role("row").filter(has_text=f"Widget {tag}")
    cancel_then_confirm(
        page,
        dialogs,
        lambda: key_row.get_by_role("button", name="Revoke").click(),
        asks=f"Revoke the key “Widget {tag}”?",
        unchanged=lambda: expect(key_row.get_by_role("button", name="Revoke")).to_be_visible(),
        changed=lambda: expect(key_row.get_by_text("revoked")).to_be_visible(),
    )

    # Reordering stages that hold agents: Testing up, above Development (which holds agents).
    page.goto("/orgs/acme/stages/")
    names = page.locator("table tbody tr input[name=name]")

    def order():
        return [names.nth(i).input_value() for i in range(names.count())]

    before = order()
    assert before[:2] == ["Development", "Testing"], before
    cancel_then_confirm(
        page,
        dialogs,
        lambda: page.get_by_role("button", name="Move Testing up").click(),
        asks="Move Testing before Development?",
        unchanged=lambda: expect(names.first).to_have_value("Development"),
        changed=lambda: expect(names.first).to_have_value("Testing"),
    )
    # Put it back (that move asks too), so other tests see the usual order.
    dialogs.answer = "accept"
    page.get_by_role("button", name="Move Testing down").click()
    expect(names.first).to_have_value("Development")
    assert order() == before

    # Stage delete (a new stage: it never held an agent).
    scratch_row = page.get_by_role("row").filter(has=page.locator(f"input[value='Scratch {tag}']"))
    cancel_then_confirm(
        page,
        dialogs,
        lambda: scratch_row.get_by_role("button", name="Delete").click(),
        asks=f"Delete the Scratch {tag} stage?",
        unchanged=lambda: expect(scratch_row).to_have_count(1),
        changed=lambda: expect(page.get_by_text(f"Deleted the Scratch {tag} stage.")).to_be_visible(),
    )
    expect(scratch_row).to_have_count(0)

    # API token revoke, on the account page.
    page.goto("/account/")
    token_row = page.get_by_role("row").filter(has_text=f"Script {tag}")
    cancel_then_confirm(
        page,
        dialogs,
        lambda: token_row.get_by_role("button", name="Revoke").click(),
        asks=f"Revoke the token “Script {tag}”?",
        unchanged=lambda: expect(token_row.get_by_role("button", name="Revoke")).to_be_visible(),
        changed=lambda: expect(token_row.get_by_text("revoked")).to_be_visible(),
    )

    # Leaving the org, as the member who leaves.
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/login/**")
    # A fresh load of the sign-in page: filling the page the sign-out is still swapping in
    # once typed both fields into one.
    sign_in(page, f"leaver-{tag}@acme.test", "a-strong-password-1")
    page.goto("/orgs/acme/members/")
    cancel_then_confirm(
        page,
        dialogs,
        lambda: page.get_by_role("button", name="Leave").click(),
        asks="Leave Acme Corp?",
        unchanged=lambda: expect(page.get_by_role("button", name="Leave")).to_be_visible(),
        changed=lambda: expect(page.get_by_text(f"Removed leaver-{tag}@acme.test.")).to_be_visible(),
    )
    assert page.goto("/orgs/acme/").status == 404
