"""The approvals inbox and the evidence packet page."""

from __future__ import annotations

import re

from approvals.models import ApprovalRequest
from approvals.tests.test_api_approvals import ask, qa  # noqa: F401  (fixture)
from lifecycle.operations import Operation
from tests.factories import signed_in


def test_inbox_lists_what_waits_for_you_with_a_count_in_the_navigation(world, qa):  # noqa: F811
    agent, operation = ask(world)
    approval_id = operation["result"]["approval"]
    page = signed_in(world.users["admin"]).get("/orgs/acme/approvals/")
    assert page.status_code == 200
    html = page.content.decode()
    assert f"/orgs/acme/approvals/{approval_id}/" in html and agent.name in html
    assert re.search(r'Approvals <span class="badge nav-count"[^>]*>1</span>', html), html
    # The requester's inbox is empty, but their own request is under "pending".
    requester = signed_in(world.users["tester"])
    mine = requester.get("/orgs/acme/approvals/").content.decode()
    assert "Nothing waits for your approval." in mine and "nav-count" not in mine
    assert approval_id in requester.get("/orgs/acme/approvals/?show=pending").content.decode()
    # A member with no role in Testing sees nothing of it.
    outsider = signed_in(world.users["developer"]).get(f"/orgs/acme/approvals/{approval_id}/")
    assert outsider.status_code == 404


def test_the_evidence_packet_and_deciding_on_it(world, qa, django_capture_on_commit_callbacks):  # noqa: F811
    _, operation = ask(world)
    approval_id = operation["result"]["approval"]
    url = f"/orgs/acme/approvals/{approval_id}/"
    admin = signed_in(world.users["admin"])
    html = admin.get(url).content.decode()
    for text in (
        "Who asked, and why",
        "tester@acme.test",
        "Ready for QA: the FAQ answers.",
        "The change that will be applied",
        "See our FAQ.",  # content, side by side
        "Gate of Testing, now",
        "Latest test runs",
        "Red team",
        "Latest soak",
        "What happens next:",
        "2 more approvals",
        'hx-confirm="Reject this promotion?',
    ):
        assert text in html, text
    assert "sk-very-secret-value" not in html
    # The requester reads it but gets no decision form.
    requester = signed_in(world.users["tester"]).get(url).content.decode()
    assert "someone else approves it" in requester and 'id="decide-form"' not in requester
    refused = signed_in(world.users["tester"]).post(url, {"action": "approve"}, follow=True)
    assert "someone else" in refused.content.decode()

    blank = admin.post(url, {"action": "reject", "comment": ""}, follow=True).content.decode()
    assert "Say why you reject the change." in blank
    first = admin.post(
        url, {"action": "approve", "comment": "Checked the FAQ."}, follow=True
    ).content.decode()
    assert "Approval recorded" in first and "Checked the FAQ." in first
    with django_capture_on_commit_callbacks(execute=True):
        last = signed_in(world.users["qa"]).post(url, {"action": "approve"}, follow=True).content.decode()
    assert "Approved: the change is queued" in last
    assert Operation.objects.for_org(world.acme).get(pk=operation["id"]).status == "succeeded"


def test_reject_and_cancel_from_the_page(world, qa):  # noqa: F811
    _, operation = ask(world)
    url = f"/orgs/acme/approvals/{operation['result']['approval']}/"
    done = signed_in(world.users["qa"]).post(url, {"action": "reject", "comment": "Not yet."}, follow=True)
    assert "Rejected: the change was cancelled." in done.content.decode()
    assert Operation.objects.for_org(world.acme).get(pk=operation["id"]).status == "cancelled"

    _, second = ask(world)
    url = f"/orgs/acme/approvals/{second['result']['approval']}/"
    page = signed_in(world.users["tester"]).post(url, {"action": "cancel"}, follow=True).content.decode()
    assert "Request cancelled" in page
    assert (
        ApprovalRequest.objects.for_org(world.acme).get(pk=second["result"]["approval"]).status == "cancelled"
    )


def test_the_operation_page_links_to_its_request(world):
    _, operation = ask(world)
    html = signed_in(world.users["tester"]).get(f"/orgs/acme/operations/{operation['id']}/").content.decode()
    assert "Awaiting approval" in html
    assert f"/orgs/acme/approvals/{operation['result']['approval']}/" in html
