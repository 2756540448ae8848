"""The UI: server-rendered pages calling the same services as the API."""

from django.test import Client

from accounts.models import ApiToken, Membership, Stage
from lifecycle.audit import AuditEvent
from tests.factories import PASSWORD, signed_in


def test_login_logout_and_redirect_to_the_first_org(world):
    client = Client()
    page = client.get("/login/")
    assert page.status_code == 200 and b'name="email"' in page.content
    bad = client.post("/login/", {"email": "viewer@acme.test", "password": "nope"})
    assert bad.status_code == 200 and b"Invalid email or password" in bad.content
    ok = client.post("/login/", {"email": "viewer@acme.test", "password": PASSWORD})
    assert ok.status_code == 302 and ok["Location"] == "/"
    assert client.get("/")["Location"] == "/orgs/acme/"
    overview = client.get("/orgs/acme/")
    assert b"Pipeline" in overview.content and b"Testing" in overview.content
    client.post("/logout/")
    assert client.get("/orgs/acme/")["Location"].startswith("/login/")


def test_login_burst_is_throttled_in_the_ui_too(world, settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    client = Client()
    for _ in range(3):
        client.post("/login/", {"email": "viewer@acme.test", "password": "nope"})
    throttled = client.post("/login/", {"email": "viewer@acme.test", "password": PASSWORD})
    assert throttled.status_code == 429 and b"Too many failed sign-in attempts" in throttled.content


def test_login_next_refuses_offsite_redirects(world):
    response = Client().post(
        "/login/", {"email": "viewer@acme.test", "password": PASSWORD, "next": "https://evil.test/"}
    )
    assert response["Location"] == "/"


def test_org_pages_are_404_for_non_members_and_the_switcher_lists_my_orgs(world):
    outsider = signed_in(world.users["outsider"])
    for path in ("/orgs/acme/", "/orgs/acme/members/", "/orgs/acme/stages/", "/orgs/acme/audit/"):
        assert outsider.get(path).status_code == 404
    page = outsider.get("/orgs/globex/").content.decode()
    assert 'href="/orgs/globex/"' in page and "/orgs/acme/" not in page


def test_members_page_shows_stage_roles_and_admins_add_members(world):
    admin = signed_in(world.users["admin"])
    page = admin.get("/orgs/acme/members/").content.decode()
    assert "tester@acme.test" in page and "Add a member" in page
    response = admin.post(
        "/orgs/acme/members/",
        {"email": "qa@acme.test", "password": PASSWORD, "role": "member", "stage_testing": "editor"},
    )
    assert response.status_code == 302
    membership = Membership.objects.for_org(world.acme).get(user__email="qa@acme.test")
    assert {sr.stage.slug: sr.role for sr in membership.stage_roles.all()} == {"testing": "editor"}


def test_member_form_errors_show_next_to_the_field(world):
    admin = signed_in(world.users["admin"])
    response = admin.post("/orgs/acme/members/", {"email": "new@acme.test", "password": "", "role": "member"})
    assert response.status_code == 200
    assert b"A password is required to create a new user." in response.content
    assert b'class="field invalid"' in response.content


def test_admin_edits_roles_in_place(world):
    admin = signed_in(world.users["admin"])
    membership = Membership.objects.for_org(world.acme).get(user=world.users["viewer"])
    prefix = str(membership.pk)
    response = admin.post(
        f"/orgs/acme/members/{membership.pk}/",
        {f"{prefix}-role": "member", f"{prefix}-stage_production": "manager"},
    )
    assert response.status_code == 302
    assert {sr.stage.slug: sr.role for sr in membership.stage_roles.all()} == {"production": "manager"}


def test_a_viewer_cannot_add_members_and_the_attempt_is_audited(world):
    viewer = signed_in(world.users["viewer"])
    page = viewer.get("/orgs/acme/members/").content.decode()
    assert "Add a member" not in page
    response = viewer.post(
        "/orgs/acme/members/", {"email": "x@acme.test", "password": PASSWORD, "role": "admin"}
    )
    assert response.status_code == 403
    assert (
        AuditEvent.objects.for_org(world.acme)
        .filter(action="access.denied", actor=world.users["viewer"])
        .exists()
    )
    assert not Membership.objects.for_org(world.acme).filter(user__email="x@acme.test").exists()


def test_stages_page_add_move_rename_delete(world):
    admin = signed_in(world.users["admin"])
    admin.post("/orgs/acme/stages/", {"name": "UAT"})
    admin.post("/orgs/acme/stages/uat/up/")
    admin.post("/orgs/acme/stages/uat/rename/", {"name": "User acceptance"})
    slugs = list(Stage.objects.for_org(world.acme).order_by("position").values_list("slug", flat=True))
    assert slugs == ["development", "testing", "staging", "uat", "production"]
    assert Stage.objects.for_org(world.acme).get(slug="uat").name == "User acceptance"
    admin.post("/orgs/acme/stages/uat/delete/")
    assert not Stage.objects.for_org(world.acme).filter(slug="uat").exists()
    assert signed_in(world.users["viewer"]).post("/orgs/acme/stages/testing/delete/").status_code == 403


def test_audit_page_filters_and_offers_csv(world):
    admin = signed_in(world.users["admin"])
    page = admin.get("/orgs/acme/audit/", {"action": "member.add"}).content.decode()
    assert "tester@acme.test" in page and "org.create" not in page
    assert "format=csv" in page
    bad = admin.get("/orgs/acme/audit/", {"since": "yesterday"})
    assert bad.status_code == 200 and b"Expected an ISO 8601 date-time." in bad.content


def test_background_export_from_the_audit_page(world, on_commit):
    admin = signed_in(world.users["admin"])
    response = on_commit(admin.post, "/orgs/acme/audit/", {"action": "member.*"})
    assert response.status_code == 302 and "/operations/" in response["Location"]
    page = admin.get(response["Location"]).content.decode()
    assert 'data-status="succeeded"' in page and "Download" in page


def test_account_page_creates_shows_once_and_revokes_tokens(world):
    client = signed_in(world.users["developer"])
    created = client.post(
        "/account/", {"create_token": "1", "name": "CI", "expires_in_days": 30}
    ).content.decode()
    token = ApiToken.objects.get(user=world.users["developer"], name="CI")
    assert token.prefix in created and "will not be shown again" in created
    again = client.get("/account/").content.decode()
    assert "will not be shown again" not in again
    client.post("/account/", {"revoke_token": str(token.pk)})
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert client.post("/account/", {"revoke_token": "not-a-uuid"}).status_code == 404


def test_create_an_org_from_the_ui(world):
    client = signed_in(world.users["viewer"])
    response = client.post("/orgs/new/", {"name": "Side Project"})
    assert response.status_code == 302 and response["Location"] == "/orgs/side-project/"
    taken = client.post("/orgs/new/", {"name": "X", "slug": "acme"})
    assert b"already exists" in taken.content
