from accounts.api.views import OrgDetailView
from accounts.models import Membership, Organization
from lifecycle.audit import AuditEvent
from tests.api_mixin import OrgScopedEndpointTests, assert_envelope
from tests.factories import api_client, make_user

ORGS = "/api/v1/orgs/"


class TestOrgDetailTenancy(OrgScopedEndpointTests):
    """The org itself: its "list" is the one org the URL names."""

    views = (OrgDetailView,)
    list_url = ORGS + "{org}/"
    detail_url = ORGS + "{id}/"
    lookup_key = "slug"
    reader = "member"
    forbidden = ("member", "PATCH", "list", {"name": "Renamed"})
    etag_write = ("admin", "PATCH", {"name": "Renamed"})

    def make_object(self, world, org):
        return org.slug

    def missing_lookup(self):
        return "no-such-org"

    def listed(self, response):
        return {response.json()["slug"]} if response.status_code == 200 else set()

    def count(self, world):
        return Organization.objects.count()


def test_list_shows_only_my_orgs_with_my_role(world):
    response = world.client("viewer").get(ORGS)
    assert response.status_code == 200
    assert response.json() == {
        "results": [
            {
                "id": str(world.acme.id),
                "slug": "acme",
                "name": "Acme",
                "role": "member",
                "created_at": response.json()["results"][0]["created_at"],
            }
        ],
        "next": None,
    }


def test_any_user_creates_an_org_and_owns_it(db):
    user = make_user()
    client = api_client(user)
    response = client.post(ORGS, {"name": "Initech Labs"}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["slug"] == "initech-labs" and body["role"] == "owner"
    org = Organization.objects.get(slug="initech-labs")
    assert Membership.objects.for_org(org).get(user=user).role == "owner"
    stages = client.get(f"{ORGS}initech-labs/stages/").json()["results"]
    assert [s["name"] for s in stages] == ["Development", "Testing", "Staging", "Production"]
    assert AuditEvent.objects.for_org(org).filter(action="org.create", actor=user).count() == 1
    # The slug is derived again for a second org of the same name.
    assert client.post(ORGS, {"name": "Initech Labs"}, format="json").json()["slug"] == "initech-labs-2"


def test_explicit_slug_taken_is_conflict_and_bad_slug_is_400(world):
    client = world.client("member")
    assert_envelope(client.post(ORGS, {"name": "X", "slug": "acme"}, format="json"), 409, "conflict")
    assert_envelope(client.post(ORGS, {"name": "X", "slug": "Not A Slug"}, format="json"), 400, "invalid")
    assert_envelope(client.post(ORGS, {"name": "X", "slug": "api"}, format="json"), 400, "invalid")


def test_org_detail_rename_and_archive(world):
    url = f"{ORGS}acme/"
    got = world.client("member").get(url)
    assert got.json()["role"] == "member" and got["ETag"]
    assert_envelope(world.client("member").patch(url, {"name": "Nope"}, format="json"), 403, "forbidden")
    stale = world.client("admin").patch(url, {"name": "Acme Inc"}, format="json", HTTP_IF_MATCH='"old"')
    assert_envelope(stale, 412, "precondition_failed")
    etag = world.client("admin").get(url)["ETag"]
    renamed = world.client("admin").patch(url, {"name": "Acme Inc"}, format="json", HTTP_IF_MATCH=etag)
    assert renamed.json()["name"] == "Acme Inc"
    assert_envelope(world.client("admin").delete(url), 403, "forbidden")
    assert world.client("owner").delete(url).status_code == 204
    # Archived: gone for everyone, and its history stays.
    assert_envelope(world.client("owner").get(url), 404, "not_found")
    assert world.client("owner").get(ORGS).json()["results"] == []
    assert AuditEvent.objects.for_org(world.acme).filter(action="org.archive").exists()


def test_non_member_sees_404_for_the_org(world):
    outsider = world.client("outsider")
    assert_envelope(outsider.get(f"{ORGS}acme/"), 404, "not_found")
    assert outsider.get(f"{ORGS}acme/").json() == outsider.get(f"{ORGS}no-such/").json()
    # ...and the attempt is in acme's audit log.
    denied = AuditEvent.objects.for_org(world.acme).filter(
        action="access.denied", actor=world.users["outsider"]
    )
    assert denied.count() == 2
    assert denied.first().changes["reason"] == "not a member"
