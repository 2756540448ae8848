"""A reviewer reads a back-port's content before deciding, and a newer change is a conflict."""

from __future__ import annotations

import json
import subprocess
import uuid

from playwright.sync_api import expect

from .conftest import ARTIFACTS, PYTHON, ROOT, sign_in

SETUP = """
import json
from accounts.models import Organization, User
from agents.models import Component
from agents.services.components import component_update
from lifecycle.access import access_for
from rollouts.services.backport import backport_propose
from tests.factories import add_component, make_agent, promote

tag = {tag!r}
org = Organization.objects.get(slug="acme")
developer = access_for(User.objects.get(email="developer@acme.test"), org)
tester = access_for(User.objects.get(email="tester@acme.test"), org)
dev = make_agent(org, "Review bot " + tag, access=developer)
add_component(dev, "skill", "refunds", {{"utterances": ["refund"], "responses": ["Refunds take 5 days."]}},
              access=developer)
testing = promote(dev, tester, changelog="For QA")
hotfix = Component.objects.for_org(org).get(agent=testing, name="refunds")
component_update(access=tester, component=hotfix,
                 spec={{"utterances": ["refund", "money back"], "responses": ["Refunds take 3 days."]}})
backport_propose(access=tester, agent=testing, include=[str(hotfix.uid)], note="QA fix " + tag)
mine = Component.objects.for_org(org).get(agent=dev, name="refunds")
component_update(access=developer, component=mine,
                 spec={{"utterances": ["refund"], "responses": ["Refunds take 4 days."]}})
print(json.dumps({{"dev": str(dev.pk)}}))
"""


def test_the_hotfix_is_read_before_it_is_applied_and_a_newer_change_is_kept(page, stack):
    tag = uuid.uuid4().hex[:6]
    done = subprocess.run(
        [PYTHON, "manage.py", "shell", "-c", SETUP.format(tag=tag)],
        cwd=ROOT,
        env=stack["env"],
        check=True,
        capture_output=True,
        text=True,
    )
    dev = json.loads(done.stdout.strip().splitlines()[-1])["dev"]
    sign_in(page, "developer@acme.test")
    page.goto("/orgs/acme/backports/")
    card = page.locator("section.card").filter(has_text=f"QA fix {tag}")
    expect(card.locator(".badge.change-conflict")).to_be_visible()
    # Both texts, side by side, the changed lines marked; no Python reprs.
    table = card.locator("table.sbs")
    expect(table.locator("tr.op-changed").filter(has_text="Refunds take 4 days.")).to_be_visible()
    expect(table.locator("tr.op-changed").filter(has_text="Refunds take 3 days.")).to_be_visible()
    expect(table.locator("tr.op-added").filter(has_text="money back")).to_be_visible()
    expect(card).not_to_contain_text("['")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "backport-review.png"), full_page=True)
    # Overwriting is a choice made per conflict.
    card.get_by_label("Type accept").fill("accept")
    card.get_by_label("Overwrite Development's refunds with the hotfix").check()
    card.get_by_role("button", name="Apply to Development").click()
    expect(page.get_by_text("Back-port applied as version")).to_be_visible()
    page.goto(f"/orgs/acme/agents/{dev}/m/skills/")
    expect(page.locator("textarea").filter(has_text="Refunds take 3 days.")).to_have_count(1)
