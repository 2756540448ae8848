"""Cancelling an operation from its page: the button asks first, and Cancel in the dialog
leaves the operation alone."""

from __future__ import annotations

import json
import subprocess

from playwright.sync_api import expect

from .conftest import PYTHON, ROOT, sign_in
from .test_confirmations import Dialogs, cancel_then_confirm

SETUP = """
import json
from accounts.models import Organization, User
from lifecycle.operations import Operation

org = Organization.objects.get(slug="acme")
admin = User.objects.get(email="admin@acme.test")
# Waiting for an approval: no worker picks it up while the test looks at it.
op = Operation.objects.create(org=org, kind="audit.export", requested_by=admin, status="awaiting_approval")
print(json.dumps({"operation": str(op.pk)}))
"""


def test_the_cancel_button_asks_and_dismissing_keeps_the_operation(page, stack):
    done = subprocess.run(
        [PYTHON, "manage.py", "shell", "-c", SETUP],
        cwd=ROOT,
        env=stack["env"],
        check=True,
        capture_output=True,
        text=True,
    )
    operation = json.loads(done.stdout.strip().splitlines()[-1])["operation"]
    sign_in(page, "admin@acme.test")
    dialogs = Dialogs(page)
    page.goto(f"/orgs/acme/operations/{operation}/")
    status = page.locator("[data-status]")
    expect(status).to_have_attribute("data-status", "awaiting_approval")
    assert page.locator("form[onsubmit]").count() == 0
    cancel_then_confirm(
        page,
        dialogs,
        lambda: page.get_by_role("button", name="Cancel operation").click(),
        asks="Cancel this audit.export?",
        unchanged=lambda: expect(status).to_have_attribute("data-status", "awaiting_approval"),
        changed=lambda: expect(status).to_have_attribute("data-status", "cancelled"),
    )
    expect(page.get_by_role("button", name="Cancel operation")).to_have_count(0)
    # The site's header and navigation stay on the operation's page.
    expect(page.locator("header")).to_be_visible()
