"""The stage settings page: admins edit the policy, members of the stage read it."""

import html
import re
from datetime import timedelta

from django.utils import timezone

from accounts.models import Stage
from lifecycle.audit import AuditEvent
from rollouts.policy import effective_document, stage_policy_update
from tests.factories import make_agent, signed_in

PAGE = "/orgs/acme/stages/{stage}/policy/"


def form_of(page: str) -> dict:
    """The values a browser would post back from the page as it is shown."""
    data: dict = {}
    for tag in re.findall(r"<input[^>]*>", page):
        name = re.search(r'name="([^"]+)"', tag)
        if not name:
            continue
        value = re.search(r'value="([^"]*)"', tag)
        if 'type="checkbox"' in tag:
            if " checked" in tag:
                data.setdefault(name.group(1), []).append(value.group(1) if value else "on")
            continue
        data[name.group(1)] = html.unescape(value.group(1)) if value else ""
    for name, body in re.findall(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', page, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected', body)
        data[name] = chosen.group(1) if chosen else ""
    later = re.search(r'<textarea[^>]*name="later"[^>]*>(.*?)</textarea>', page, re.S)
    data["later"] = html.unescape(later.group(1)) if later else ""
    return data


def test_the_stages_page_links_each_stage_policy(world):
    page = signed_in(world.users["viewer"]).get("/orgs/acme/stages/").content.decode()
    assert 'href="/orgs/acme/stages/testing/policy/"' in page


def test_an_admin_edits_the_policy_and_errors_show_next_to_their_field_with_input_kept(world):
    admin = signed_in(world.users["admin"])
    page = admin.get(PAGE.format(stage="testing")).content.decode()
    assert "Save the policy of Testing" in page
    data = form_of(page)
    data.update(
        gate_min_executions="100",
        gate_min_days="7",
        approvals_required="1",
        w0_kind="weekly",
        w0_days=["fri"],
        w0_start="12:00",
        w0_end_day="mon",
        w0_end="08:00",
        w0_timezone="Europe/Berlinn",
        w0_reason="no Friday deploys",
    )
    refused = admin.post(PAGE.format(stage="testing"), data)
    assert refused.status_code == 400
    body = refused.content.decode()
    # The error sits in the window's time-zone field, and everything typed is still there.
    field = body[body.index('id="w0_timezone"') :]
    assert 'value="Europe/Berlinn"' in field[:200]
    assert "IANA time zone" in field[: field.index("</div>")]
    assert 'value="no Friday deploys"' in body and 'value="100"' in body
    testing = Stage.objects.for_org(world.acme).get(slug="testing")
    assert effective_document(testing)["gate"]["min_executions"] is None  # nothing saved
    data["w0_timezone"] = "Europe/Berlin"
    saved = admin.post(PAGE.format(stage="testing"), data)
    assert saved.status_code == 302, saved.content.decode()[:2000]
    document = effective_document(testing)
    assert document["gate"]["min_executions"] == 100 and document["gate"]["min_days"] == 7
    assert document["approvals"]["required"] == 1
    assert document["freeze_windows"][0]["timezone"] == "Europe/Berlin"
    assert AuditEvent.objects.for_org(world.acme).filter(action="stage.policy_updated").exists()
    # Saving the page as shown changes nothing (and keeps the window's id).
    window_id = document["freeze_windows"][0]["id"]
    again = form_of(admin.get(PAGE.format(stage="testing")).content.decode())
    assert admin.post(PAGE.format(stage="testing"), again).status_code == 302
    assert effective_document(testing) == document
    assert effective_document(testing)["freeze_windows"][0]["id"] == window_id


def test_a_stale_form_is_refused_and_keeps_what_was_typed(world):
    admin = signed_in(world.users["admin"])
    data = form_of(admin.get(PAGE.format(stage="testing")).content.decode())
    testing = Stage.objects.for_org(world.acme).get(slug="testing")
    stage_policy_update(access=world.access("owner"), stage=testing, document={"approvals": {"required": 2}})
    data["gate_min_executions"] = "50"
    refused = admin.post(PAGE.format(stage="testing"), data)
    assert refused.status_code == 400 and "Someone changed this policy" in refused.content.decode()
    assert 'value="50"' in refused.content.decode()
    assert effective_document(testing)["approvals"]["required"] == 2


def test_members_read_it_without_a_form_and_cannot_post(world):
    tester = signed_in(world.users["tester"])
    page = tester.get(PAGE.format(stage="testing")).content.decode()
    assert "org owners and admins change it" in page and "<fieldset disabled>" in page
    assert "Save the policy" not in page
    assert tester.post(PAGE.format(stage="testing"), {"gate_min_executions": "1"}).status_code == 403
    assert tester.get(PAGE.format(stage="staging")).status_code == 403  # no role there
    assert signed_in(world.users["outsider"]).get(PAGE.format(stage="testing")).status_code == 404


def test_promote_and_pull_pages_say_frozen_until(world):
    now = timezone.now()
    testing = Stage.objects.for_org(world.acme).get(slug="testing")
    stage_policy_update(
        access=world.access("admin"),
        stage=testing,
        document={
            "freeze_windows": [
                {
                    "kind": "once",
                    "starts_at": (now - timedelta(hours=1)).isoformat(),
                    "ends_at": (now + timedelta(hours=1)).isoformat(),
                    "reason": "quarter close",
                }
            ]
        },
    )
    agent = make_agent(world.acme)
    page = signed_in(world.users["tester"]).get(f"/orgs/acme/agents/{agent.pk}/promote/").content.decode()
    assert "Testing is frozen until" in page and "quarter close" in page


def test_an_admin_overrides_the_freeze_from_the_promote_dialog_with_a_reason(world):
    now = timezone.now()
    testing = Stage.objects.for_org(world.acme).get(slug="testing")
    window = {
        "kind": "once",
        "starts_at": (now - timedelta(hours=1)).isoformat(),
        "ends_at": (now + timedelta(hours=1)).isoformat(),
    }
    stage_policy_update(access=world.access("admin"), stage=testing, document={"freeze_windows": [window]})
    agent = make_agent(world.acme)
    url = f"/orgs/acme/agents/{agent.pk}/promote/"
    assert 'name="override_reason"' not in signed_in(world.users["tester"]).get(url).content.decode()
    admin = signed_in(world.users["admin"])
    assert 'name="override_reason"' in admin.get(url).content.decode()
    refused = admin.post(url, {"confirm": "accept", "changelog": "For QA"})
    assert refused.status_code == 423 and "frozen until" in refused.content.decode()
    assert "For QA" in refused.content.decode()  # the typed changelog is kept
    started = admin.post(
        url, {"confirm": "accept", "changelog": "For QA", "override_reason": "customer outage"}
    )
    assert started.status_code == 302, started.content.decode()[:3000]
    event = AuditEvent.objects.for_org(world.acme).get(action="stage.freeze_overridden")
    assert event.changes["reason"] == "customer outage"
