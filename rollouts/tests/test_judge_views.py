"""The Evaluation settings page: owners and admins set the LLM judge; the key is never
shown; errors sit next to their fields; a stale form cannot overwrite a newer change;
"Test the judge" scores a sample answer against a real local endpoint."""

import html
import re

from django.test import override_settings

from lifecycle import crypto
from lifecycle.audit import AuditEvent
from rollouts.models import JudgeSettings
from rollouts.services.judge import judge_settings_of, judge_settings_update
from tests.factories import signed_in
from tests.http_servers import Recorder

PAGE = "/orgs/acme/evaluation/"
KEY = "sk-page-secret-9876"


def form_of(page: str) -> dict:
    """What a browser posts back from the judge form as shown (checkboxes as "on")."""
    form = page[page.index('id="judge-form"') : page.index("</form>", page.index('id="judge-form"'))]
    data = {}
    for tag in re.findall(r"<input[^>]*>", form):
        name = re.search(r'name="([^"]+)"', tag)
        if not name:
            continue
        if 'type="checkbox"' in tag:
            if " checked" in tag:
                data[name.group(1)] = "on"
            continue
        value = re.search(r'value="([^"]*)"', tag)
        data[name.group(1)] = html.unescape(value.group(1)) if value else ""
    return data


def field_html(page: str, field_id: str) -> str:
    start = page.index(f'id="{field_id}"')
    return page[start : page.index("</div>", start)]


def save(client, **values):
    data = form_of(client.get(PAGE).content.decode())
    data.update(values)
    return client.post(PAGE, data)


def test_an_admin_sets_the_judge_and_the_key_never_reaches_the_html(world):
    admin = signed_in(world.users["admin"])
    page = admin.get(PAGE).content.decode()
    assert "no key stored" in page and 'aria-current="page">Evaluation<' in page
    saved = save(admin, base_url="http://127.0.0.1:9/v1", model="judge-mini", key=KEY, enabled="on")
    assert saved.status_code == 302, saved.content.decode()[:3000]
    row = JudgeSettings.objects.for_org(world.acme).get()
    assert crypto.decrypt(row.key_encrypted) == KEY and row.model == "judge-mini" and row.enabled
    page = admin.get(PAGE).content.decode()
    assert "a key is stored" in page and "Remove the stored key" in page
    assert KEY not in page and row.key_encrypted not in page
    assert 'value="judge-mini"' in page
    event = AuditEvent.objects.for_org(world.acme).filter(action="evaluation.judge_updated").get()
    assert KEY not in str(event.changes)


def test_an_empty_key_keeps_the_stored_one_and_the_checkbox_removes_it(world):
    admin = signed_in(world.users["owner"])
    save(admin, base_url="http://127.0.0.1:9/v1", model="judge-mini", key=KEY)
    assert save(admin, model="judge-large").status_code == 302
    row = JudgeSettings.objects.for_org(world.acme).get()
    assert row.model == "judge-large" and crypto.decrypt(row.key_encrypted) == KEY
    assert save(admin, remove_key="on").status_code == 302
    assert JudgeSettings.objects.for_org(world.acme).get().key_encrypted == ""
    assert "no key stored" in admin.get(PAGE).content.decode()


def test_unticking_enabled_disables_the_judge(world):
    admin = signed_in(world.users["admin"])
    save(admin, base_url="http://127.0.0.1:9/v1", model="m", enabled="on")
    data = form_of(admin.get(PAGE).content.decode())
    data.pop("enabled")
    assert admin.post(PAGE, data).status_code == 302
    assert judge_settings_of(world.acme).enabled is False


def test_bad_input_shows_errors_next_to_fields_keeps_input_and_never_echoes_the_key(world):
    admin = signed_in(world.users["admin"])
    refused = save(admin, base_url="not a url", model="", key=KEY)
    assert refused.status_code == 400
    page = refused.content.decode()
    assert "Enter a valid URL." in field_html(page, "base_url")
    assert 'value="not a url"' in field_html(page, "base_url")
    assert "may not be blank" in field_html(page, "model")
    assert KEY not in page
    refused = save(admin, base_url="http://127.0.0.1:9/v1", model="m\x00")
    assert refused.status_code == 400 and 'role="alert"' in refused.content.decode()
    too_long = save(admin, base_url="http://127.0.0.1:9/v1", model="m", key="k" * 1001)
    assert too_long.status_code == 400 and "1000" in field_html(too_long.content.decode(), "key")
    assert not JudgeSettings.objects.for_org(world.acme).exists()


@override_settings(OUTBOUND_ALLOWED_HOSTS=[])
def test_a_private_endpoint_is_refused_next_to_the_url(world):
    admin = signed_in(world.users["admin"])
    refused = save(admin, base_url="http://10.0.0.1/v1", model="m")
    assert refused.status_code == 400
    assert "not" in field_html(refused.content.decode(), "base_url").lower()
    assert 'class="error"' in field_html(refused.content.decode(), "base_url")
    assert not JudgeSettings.objects.for_org(world.acme).exists()


def test_a_concurrent_change_is_not_overwritten(world):
    admin = signed_in(world.users["admin"])
    save(admin, base_url="http://127.0.0.1:9/v1", model="first", key=KEY)
    seen = form_of(admin.get(PAGE).content.decode())  # the editor opens the page…
    judge_settings_update(  # …someone else saves meanwhile…
        access=world.access("owner"), base_url="http://127.0.0.1:9/v1", model="theirs"
    )
    refused = admin.post(PAGE, {**seen, "model": "mine"})  # …the editor's save is refused
    assert refused.status_code == 400
    page = refused.content.decode()
    assert "Someone changed the judge" in page and 'value="mine"' in page
    assert judge_settings_of(world.acme).model == "theirs"
    # The kept form still carries the old version: saving it again is refused again.
    again = form_of(page)
    assert admin.post(PAGE, again).status_code == 400
    # After a reload, the save goes through.
    assert save(admin, model="mine").status_code == 302
    assert judge_settings_of(world.acme).model == "mine"


def test_a_stale_first_save_is_refused_when_another_admin_created_the_judge(world):
    admin = signed_in(world.users["admin"])
    seen = form_of(admin.get(PAGE).content.decode())
    judge_settings_update(access=world.access("owner"), base_url="http://127.0.0.1:9/v1", model="theirs")
    refused = admin.post(PAGE, {**seen, "base_url": "http://127.0.0.1:9/v1", "model": "mine"})
    assert refused.status_code == 400 and "Someone changed the judge" in refused.content.decode()
    assert judge_settings_of(world.acme).model == "theirs"


def test_members_who_are_not_admins_are_refused_and_see_no_nav_entry(world):
    for who in ("developer", "tester", "viewer", "member"):
        client = signed_in(world.users[who])
        assert client.get(PAGE).status_code == 403
        assert client.post(PAGE, {"base_url": "http://127.0.0.1:9/v1", "model": "m"}).status_code == 403
        assert client.post(PAGE, {"test": "1"}).status_code == 403
        assert ">Evaluation<" not in client.get("/orgs/acme/").content.decode()
    assert not JudgeSettings.objects.for_org(world.acme).exists()
    assert AuditEvent.objects.for_org(world.acme).filter(action="access.denied").exists()
    # Another org's admin does not see acme at all.
    assert signed_in(world.users["outsider"]).get(PAGE).status_code == 404


def completion(content):
    return {"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]}


def test_the_test_button_shows_the_judges_scores(world):
    admin = signed_in(world.users["admin"])
    reply = completion('{"relevance": 0.9, "groundedness": 1}')
    with Recorder(lambda r, req: (200, reply, 0)) as server:
        save(admin, base_url=server.url + "/v1", model="judge-mini", key=KEY, enabled="on")
        page = admin.post(PAGE, {"test": "1"}).content.decode()
    assert "relevance <strong>0.9</strong>" in page and "groundedness <strong>1.0</strong>" in page
    (request,) = server.requests
    assert request["headers"]["Authorization"] == f"Bearer {KEY}"
    assert "30 days" in request["body"]["messages"][-1]["content"]
    assert KEY not in page


def test_the_test_button_shows_why_the_judge_failed(world):
    admin = signed_in(world.users["admin"])
    with Recorder(lambda r, req: (401, {"error": f"bad key {KEY}"}, 0)) as server:
        save(admin, base_url=server.url + "/v1", model="judge-mini", key=KEY)
        page = admin.post(PAGE, {"test": "1"}).content.decode()
    assert "The judge gave no score: The endpoint answered HTTP 401." in page
    assert KEY not in page
    with Recorder(lambda r, req: (200, completion("I think it is fine."), 0)) as server:
        save(admin, base_url=server.url + "/v1")
        page = admin.post(PAGE, {"test": "1"}).content.decode()
    assert "did not reply with" in page
    save(admin, base_url="http://127.0.0.1:9/v1")  # nothing listens there
    assert "could not be reached" in admin.post(PAGE, {"test": "1"}).content.decode()


def test_the_test_button_without_a_judge_says_so(world):
    page = signed_in(world.users["admin"]).post(PAGE, {"test": "1"}).content.decode()
    assert "No judge is configured." in page
