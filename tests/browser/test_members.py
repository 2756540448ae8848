"""A demo user signs in, finds their org, its stages and members, and the audit log."""

from playwright.sync_api import expect

from .conftest import sign_in


def test_sign_in_and_open_the_members_page(page):
    sign_in(page, "admin@acme.test")
    expect(page.get_by_role("heading", name="Acme Corp")).to_be_visible()
    page.get_by_role("link", name="Members").click()
    expect(page.get_by_role("heading", name="Members")).to_be_visible()
    for email in ("owner@acme.test", "tester@acme.test", "production@acme.test"):
        expect(page.get_by_role("rowheader", name=email)).to_be_visible()
    # The tester manages Testing: their row's Testing select says so.
    expect(page.get_by_label("Testing role of tester@acme.test")).to_have_value("manager")


def test_admin_adds_a_member_and_sees_it_in_the_audit_log(page):
    sign_in(page, "admin@acme.test")
    page.goto("/orgs/acme/members/")
    page.get_by_label("Email").fill("new.tester@acme.test")
    page.get_by_label("Password").fill("a-strong-password-1")
    page.locator("select[name=stage_testing]").select_option("editor")
    page.get_by_role("button", name="Add member").click()
    expect(page.get_by_text("Added new.tester@acme.test.")).to_be_visible()
    expect(page.get_by_role("rowheader", name="new.tester@acme.test")).to_be_visible()
    page.get_by_role("link", name="Audit log").click()
    row = page.get_by_role("row").filter(has_text="member.add").filter(has_text="new.tester@acme.test")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("admin@acme.test")


def test_a_viewer_sees_stages_but_no_admin_controls(page):
    sign_in(page, "viewer@acme.test")
    page.get_by_role("link", name="Stages").click()
    for name in ("Development", "Testing", "Staging", "Production"):
        expect(page.get_by_role("cell", name=name, exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Add stage")).to_have_count(0)


def test_wrong_password_shows_the_error_next_to_the_form(page):
    page.goto("/login/")
    page.get_by_label("Email").fill("viewer@acme.test")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("Invalid email or password")
