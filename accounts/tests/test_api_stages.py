import itertools

from accounts.api.views import StageViewSet
from accounts.models import Stage
from accounts.services.stages import stage_create
from lifecycle.audit import AuditEvent
from tests.api_mixin import OrgScopedEndpointTests, assert_envelope
from tests.factories import owner_access

STAGES = "/api/v1/orgs/{org}/stages/"
_n = itertools.count(1)


class TestStagesTenancy(OrgScopedEndpointTests):
    views = (StageViewSet,)
    list_url = STAGES
    detail_url = STAGES + "{id}/"
    lookup_key = "slug"
    reader = "member"
    forbidden = ("developer", "PATCH", "detail", {"name": "Renamed"})
    etag_write = ("admin", "PATCH", {"name": "Renamed"})
    create_payload = {"name": "QA", "slug": "qa", "position": 1}

    def make_object(self, world, org):
        return stage_create(access=owner_access(org), name=f"Extra {next(_n)}").slug

    def missing_lookup(self):
        return "no-such-stage"


def slugs(response):
    return [s["slug"] for s in response.json()["results"]]


def test_new_org_has_the_four_default_stages_in_order(world):
    response = world.client("member").get(STAGES.format(org="acme"))
    assert slugs(response) == ["development", "testing", "staging", "production"]
    assert [s["position"] for s in response.json()["results"]] == [0, 1, 2, 3]


def test_insert_rename_and_move_keep_a_dense_order(world):
    client = world.client("admin")
    created = client.post(STAGES.format(org="acme"), {"name": "UAT", "position": 2}, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["slug"] == "uat"
    assert slugs(client.get(STAGES.format(org="acme"))) == [
        "development",
        "testing",
        "uat",
        "staging",
        "production",
    ]
    moved = client.patch(
        STAGES.format(org="acme") + "uat/", {"position": 3, "name": "User acceptance"}, format="json"
    )
    assert moved.json() == {**moved.json(), "slug": "uat", "name": "User acceptance", "position": 3}
    listing = client.get(STAGES.format(org="acme")).json()["results"]
    assert [s["slug"] for s in listing] == ["development", "testing", "staging", "uat", "production"]
    assert [s["position"] for s in listing] == [0, 1, 2, 3, 4]
    assert AuditEvent.objects.for_org(world.acme).filter(action__startswith="stage.").count() == 2


def test_slug_never_changes(world):
    # `slug` is a read-only field of the stage: sent back, it is ignored.
    response = world.client("admin").patch(
        STAGES.format(org="acme") + "testing/", {"slug": "qa", "name": "QA"}, format="json"
    )
    assert response.status_code == 200 and response.json()["slug"] == "testing"
    assert response.json()["name"] == "QA"
    assert not Stage.objects.for_org(world.acme).filter(slug="qa").exists()


def test_duplicate_slug_is_conflict(world):
    assert_envelope(
        world.client("admin").post(STAGES.format(org="acme"), {"name": "Testing"}, format="json"),
        409,
        "conflict",
    )


def test_delete_an_empty_stage_renumbers_the_rest(world):
    client = world.client("admin")
    assert client.delete(STAGES.format(org="acme") + "staging/").status_code == 204
    listing = client.get(STAGES.format(org="acme")).json()["results"]
    assert [(s["slug"], s["position"]) for s in listing] == [
        ("development", 0),
        ("testing", 1),
        ("production", 2),
    ]
    event = AuditEvent.objects.for_org(world.acme).get(action="stage.delete")
    assert event.changes == {"slug": "staging", "name": "Staging"}


def test_a_stage_referenced_by_history_cannot_be_deleted(world):
    # An operation about a stage is history that protects it, as an agent does.
    from lifecycle.operations import Operation

    stage = Stage.objects.for_org(world.acme).get(slug="testing")
    Operation.objects.create(org=world.acme, kind="audit.export", stage=stage, status="succeeded")
    response = world.client("admin").delete(STAGES.format(org="acme") + "testing/")
    assert_envelope(response, 409, "conflict")
    assert Stage.objects.for_org(world.acme).filter(slug="testing").exists()
    assert not AuditEvent.objects.for_org(world.acme).filter(action="stage.delete").exists()
