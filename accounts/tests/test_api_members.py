from accounts.api.views import MemberViewSet
from accounts.models import Membership, Stage, User
from lifecycle.audit import AuditEvent
from tests.api_mixin import OrgScopedEndpointTests, assert_envelope
from tests.factories import PASSWORD, add_member, make_user

MEMBERS = "/api/v1/orgs/{org}/members/"


class TestMembersTenancy(OrgScopedEndpointTests):
    views = (MemberViewSet,)
    list_url = MEMBERS
    detail_url = MEMBERS + "{id}/"
    reader = "viewer"
    forbidden = ("viewer", "POST", "list", {"email": "new@acme.test", "password": PASSWORD})
    etag_write = ("admin", "PATCH", {"role": "admin"})
    create_payload = {
        "email": "newbie@acme.test",
        "password": PASSWORD,
        "role": "member",
        "stage_roles": {"development": "editor"},
    }

    def make_object(self, world, org):
        user = add_member(org)
        return str(Membership.objects.for_org(org).get(user=user).pk)


def test_add_new_member_with_stage_roles(world):
    response = world.client("admin").post(
        MEMBERS.format(org="acme"),
        {
            "email": "Dev2@Acme.test",
            "password": PASSWORD,
            "role": "member",
            "stage_roles": {"testing": "viewer"},
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["user"]["email"] == "dev2@acme.test"
    assert body["role"] == "member"
    assert body["stage_roles"] == {"testing": "viewer"}
    assert response["ETag"]
    assert User.objects.get(email="dev2@acme.test").check_password(PASSWORD)
    event = AuditEvent.objects.for_org(world.acme).get(action="member.add", target_id=body["id"])
    assert event.actor == world.users["admin"]
    assert "password" not in str(event.changes)


def test_adding_an_existing_user_never_changes_their_password(world):
    user = make_user("already@there.test", password="their-own-password-1")
    response = world.client("admin").post(
        MEMBERS.format(org="acme"),
        {"email": "already@there.test", "password": "attacker-chosen-99", "role": "member"},
        format="json",
    )
    assert response.status_code == 201
    user.refresh_from_db()
    assert user.check_password("their-own-password-1")
    assert not user.check_password("attacker-chosen-99")


def test_new_user_needs_a_password_and_a_good_one(world):
    client = world.client("admin")
    missing = client.post(MEMBERS.format(org="acme"), {"email": "nopass@acme.test"}, format="json")
    assert assert_envelope(missing, 400, "invalid")["error"]["fields"] == {
        "password": ["A password is required to create a new user."]
    }
    weak = client.post(
        MEMBERS.format(org="acme"), {"email": "weak@acme.test", "password": "123"}, format="json"
    )
    assert "password" in assert_envelope(weak, 400)["error"]["fields"]
    assert not User.objects.filter(email__in=["nopass@acme.test", "weak@acme.test"]).exists()


def test_unknown_stage_in_stage_roles_is_a_field_error(world):
    response = world.client("admin").post(
        MEMBERS.format(org="acme"),
        {"email": "x@acme.test", "password": PASSWORD, "stage_roles": {"qa": "editor"}},
        format="json",
    )
    assert assert_envelope(response, 400)["error"]["fields"] == {
        "stage_roles.qa": ["No such stage in this organization."]
    }


def test_duplicate_member_is_conflict(world):
    response = world.client("admin").post(
        MEMBERS.format(org="acme"), {"email": "viewer@acme.test", "role": "member"}, format="json"
    )
    assert_envelope(response, 409, "conflict")


def test_patch_stage_roles_replaces_the_whole_map(world):
    membership = Membership.objects.for_org(world.acme).get(user=world.users["tester"])
    url = MEMBERS.format(org="acme") + f"{membership.pk}/"
    response = world.client("admin").patch(url, {"stage_roles": {"staging": "editor"}}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["stage_roles"] == {"staging": "editor"}
    access = world.access("tester")
    staging = Stage.objects.for_org(world.acme).get(slug="staging")
    assert access.stage_roles == {staging.pk: "editor"}
    assert access.has_stage_role(staging, "editor") and not access.has_stage_role(staging, "manager")
    event = AuditEvent.objects.for_org(world.acme).get(action="member.update")
    assert event.changes["stage_roles"] == [
        {"development": "viewer", "testing": "manager"},
        {"staging": "editor"},
    ]


def test_only_owners_grant_owner(world):
    membership = Membership.objects.for_org(world.acme).get(user=world.users["member"])
    url = MEMBERS.format(org="acme") + f"{membership.pk}/"
    assert_envelope(world.client("admin").patch(url, {"role": "owner"}, format="json"), 403, "forbidden")
    assert world.client("owner").patch(url, {"role": "owner"}, format="json").json()["role"] == "owner"


def test_last_owner_cannot_leave_or_be_demoted(world):
    membership = Membership.objects.for_org(world.acme).get(user=world.users["owner"])
    url = MEMBERS.format(org="acme") + f"{membership.pk}/"
    assert_envelope(world.client("owner").patch(url, {"role": "member"}, format="json"), 409, "conflict")
    assert_envelope(world.client("owner").delete(url), 409, "conflict")


def test_a_member_may_leave_but_not_remove_others(world):
    mine = Membership.objects.for_org(world.acme).get(user=world.users["member"])
    theirs = Membership.objects.for_org(world.acme).get(user=world.users["viewer"])
    client = world.client("member")
    assert_envelope(client.delete(MEMBERS.format(org="acme") + f"{theirs.pk}/"), 403, "forbidden")
    assert client.delete(MEMBERS.format(org="acme") + f"{mine.pk}/").status_code == 204
    assert not Membership.objects.for_org(world.acme).filter(pk=mine.pk).exists()
    # Gone from the org: its URLs are now missing, not forbidden.
    assert_envelope(client.get(MEMBERS.format(org="acme")), 404, "not_found")


def test_members_list_query_count_does_not_grow(world, django_assert_max_num_queries):
    client = world.client("admin")
    client.get(MEMBERS.format(org="acme"))  # warm the token's last-used write
    with django_assert_max_num_queries(8) as small:
        client.get(MEMBERS.format(org="acme"))
    for _ in range(15):
        add_member(world.acme, stage_roles={"development": "viewer", "testing": "editor"})
    with django_assert_max_num_queries(len(small.captured_queries)):
        response = client.get(MEMBERS.format(org="acme"), {"page_size": 100})
    assert len(response.json()["results"]) == 21
