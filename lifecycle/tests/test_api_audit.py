import csv
import io

import pytest

from lifecycle.audit import AppendOnlyError, AuditEvent, audit_record
from lifecycle.audit_export import OperationArtifact
from lifecycle.endpoints import AuditViewSet
from lifecycle.operations import Operation
from tests.api_mixin import OrgScopedEndpointTests, assert_envelope
from tests.factories import owner_access

AUDIT = "/api/v1/orgs/{org}/audit/"


class TestAuditTenancy(OrgScopedEndpointTests):
    views = (AuditViewSet,)
    list_url = AUDIT
    reader = "admin"
    forbidden = ("viewer", "POST", "exports_list", {})

    def make_object(self, world, org):
        access = owner_access(org)
        return str(audit_record(org=org, actor=access.user, action="test.event").pk)

    def url(self, world, kind, org, lookup=None):
        slug = getattr(org, "slug", org)
        return AUDIT.format(org=slug) + ("exports/" if kind == "exports_list" else "")


def test_admins_read_everything_members_read_their_own(world):
    admin_actions = {
        e["action"] for e in world.client("admin").get(AUDIT.format(org="acme")).json()["results"]
    }
    assert {"org.create", "member.add"} <= admin_actions
    world.client("viewer").get("/api/v1/orgs/acme/members/")  # reading writes nothing
    world.client("viewer").post("/api/v1/orgs/acme/stages/", {"name": "x"}, format="json")  # denied → audited
    mine = world.client("viewer").get(AUDIT.format(org="acme")).json()["results"]
    # Newest first: the denial, then the token the test client signed in with.
    assert [e["action"] for e in mine] == ["access.denied", "token.create"]
    assert mine[0]["actor"]["email"] == "viewer@acme.test"
    assert mine[0]["changes"]["method"] == "POST"


def test_filters_and_bad_filters(world):
    client = world.client("admin")
    by_action = client.get(AUDIT.format(org="acme"), {"action": "member.add"}).json()["results"]
    assert len(by_action) == 5 and {e["action"] for e in by_action} == {"member.add"}
    prefix = client.get(AUDIT.format(org="acme"), {"action": "member.*"}).json()["results"]
    assert len(prefix) == 5
    by_actor = client.get(AUDIT.format(org="acme"), {"actor": "owner@acme.test"}).json()["results"]
    assert by_actor and all(e["actor"]["email"] == "owner@acme.test" for e in by_actor)
    by_id = client.get(AUDIT.format(org="acme"), {"actor": str(world.users["owner"].pk)}).json()["results"]
    assert by_id == by_actor
    newest = by_actor[0]["created_at"]
    assert client.get(AUDIT.format(org="acme"), {"since": "2999-01-01T00:00:00Z"}).json()["results"] == []
    assert client.get(AUDIT.format(org="acme"), {"until": newest, "action": "org.create"}).json()["results"]
    bad = assert_envelope(client.get(AUDIT.format(org="acme"), {"since": "yesterday"}), 400, "invalid")
    assert bad["error"]["fields"] == {"since": ["Expected an ISO 8601 date-time."]}


def test_csv_download_has_a_header_and_the_filtered_rows(world):
    response = world.client("admin").get(AUDIT.format(org="acme"), {"format": "csv", "action": "member.add"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == [
        "created_at",
        "actor",
        "action",
        "target_type",
        "target_id",
        "target",
        "changes",
        "request_id",
        "ip",
    ]
    assert len(rows) == 6 and {r[2] for r in rows[1:]} == {"member.add"}
    assert {r[5] for r in rows[1:]} >= {"viewer@acme.test", "tester@acme.test"}


def test_pagination_is_ordered_and_complete(world):
    access = owner_access(world.acme)
    for n in range(30):
        audit_record(org=world.acme, actor=access.user, action=f"test.page{n}")
    client = world.client("admin")
    seen, url = [], AUDIT.format(org="acme") + "?page_size=7"
    while url:
        page = client.get(url).json()
        seen += [e["id"] for e in page["results"]]
        url = page["next"]
    total = AuditEvent.objects.for_org(world.acme).count()
    assert len(seen) == len(set(seen)) == total


def test_events_carry_request_id_and_ip(world):
    client = world.client("admin")
    client.post(
        "/api/v1/orgs/acme/stages/", {"name": "Canary"}, format="json", HTTP_X_REQUEST_ID="req-abc-123"
    )
    event = AuditEvent.objects.for_org(world.acme).get(action="stage.create")
    assert event.request_id == "req-abc-123"
    assert event.ip == "127.0.0.1"
    assert event.actor == world.users["admin"]


def test_the_orm_refuses_update_and_delete(world):
    event = AuditEvent.objects.for_org(world.acme).first()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.for_org(world.acme).update(action="tampered")
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.for_org(world.acme).filter(pk=event.pk).delete()
    with pytest.raises(AppendOnlyError):
        event.delete()
    event.action = "tampered"
    with pytest.raises(AppendOnlyError):
        event.save()
    assert AuditEvent.objects.for_org(world.acme).filter(action="tampered").count() == 0


@pytest.mark.django_db
def test_secret_looking_values_are_masked(world):
    event = audit_record(
        org=world.acme,
        actor=world.users["owner"],
        action="test.secret",
        changes={"password": "hunter2", "api_key": "sk-123", "spec": {"secret": True, "value": "canary-xyz"}},
    )
    assert "hunter2" not in str(event.changes) and "sk-123" not in str(event.changes)
    assert "canary-xyz" not in str(event.changes)
    assert event.changes["spec"]["secret"] is True


def test_background_export_produces_one_downloadable_csv(world, on_commit):
    client = world.client("admin")
    accepted = on_commit(
        client.post, AUDIT.format(org="acme") + "exports/", {"action": "member.*"}, format="json"
    )
    assert accepted.status_code == 202, accepted.content
    op_id = accepted.json()["operation"]["id"]
    op = world.client("admin").get(f"/api/v1/orgs/acme/operations/{op_id}/").json()
    assert op["status"] == "succeeded" and op["progress"] == 100
    assert op["result"]["rows"] == 5
    download = client.get(op["result"]["download"])
    assert download.status_code == 200 and download["Content-Disposition"].startswith("attachment")
    rows = list(csv.reader(io.StringIO(download.content.decode())))
    assert len(rows) == 6 and rows[0][2] == "action"
    assert OperationArtifact.objects.for_org(world.acme).count() == 1
    # Redelivering the finished task changes nothing.
    from lifecycle.operations import operation_execute

    operation_execute(org_id=str(world.acme.id), operation_id=op_id)
    assert OperationArtifact.objects.for_org(world.acme).count() == 1
    assert Operation.objects.for_org(world.acme).get(pk=op_id).attempts == 1


def test_export_with_bad_filters_is_400_and_starts_nothing(world):
    response = world.client("admin").post(
        AUDIT.format(org="acme") + "exports/", {"since": "nope"}, format="json"
    )
    assert_envelope(response, 400, "invalid")
    assert not Operation.objects.for_org(world.acme).exists()


def test_odd_time_zones_in_filters_are_normalised_not_a_500(world):
    client = world.client("admin")
    response = client.get(AUDIT.format(org="acme"), {"until": "0304-08-07T07:55:34-19:46"})
    assert response.status_code == 200 and response.json()["results"] == []
    assert_envelope(client.get(AUDIT.format(org="acme"), {"since": "2026-13-45T99:00:00Z"}), 400, "invalid")
