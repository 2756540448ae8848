from accounts.models import Stage
from lifecycle.audit import AuditEvent
from lifecycle.endpoints import OperationViewSet
from lifecycle.operations import Operation, operation_execute, operation_start
from tests.api_mixin import OrgScopedEndpointTests, assert_envelope
from tests.factories import owner_access

OPS = "/api/v1/orgs/{org}/operations/"


def make_operation(org, *, actor=None, stage=None, status="queued", kind="audit.export"):
    actor = actor or owner_access(org).user
    return Operation.objects.create(org=org, kind=kind, requested_by=actor, stage=stage, status=status)


class TestOperationsTenancy(OrgScopedEndpointTests):
    views = (OperationViewSet,)
    list_url = OPS
    detail_url = OPS + "{id}/"
    reader = "admin"
    forbidden = None
    etag_write = None

    def make_object(self, world, org):
        return str(make_operation(org).pk)


def test_members_follow_their_own_work_and_their_stages_work(world):
    testing = Stage.objects.for_org(world.acme).get(slug="testing")
    production = Stage.objects.for_org(world.acme).get(slug="production")
    own = make_operation(world.acme, actor=world.users["tester"])
    in_testing = make_operation(world.acme, stage=testing)
    in_production = make_operation(world.acme, stage=production)
    listed = {o["id"] for o in world.client("tester").get(OPS.format(org="acme")).json()["results"]}
    assert listed == {str(own.pk), str(in_testing.pk)}
    assert_envelope(
        world.client("tester").get(OPS.format(org="acme") + f"{in_production.pk}/"), 404, "not_found"
    )
    assert world.client("admin").get(OPS.format(org="acme") + f"{in_production.pk}/").status_code == 200


def test_operation_shape(world):
    op = make_operation(world.acme, actor=world.users["admin"])
    body = world.client("admin").get(OPS.format(org="acme") + f"{op.pk}/").json()
    assert {"id", "kind", "status", "progress", "result", "error", "created_at", "finished_at"} <= set(body)
    assert body["status"] == "queued" and body["progress"] == 0 and body["error"] is None


def test_cancel_a_queued_operation_only_by_requester_or_admin(world, on_commit):
    op = make_operation(world.acme, actor=world.users["tester"])
    url = OPS.format(org="acme") + f"{op.pk}/cancel/"
    other = make_operation(world.acme, actor=world.users["viewer"])
    assert_envelope(world.client("tester").post(OPS.format(org="acme") + f"{other.pk}/cancel/"), 404)
    response = world.client("tester").post(url)
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert AuditEvent.objects.for_org(world.acme).filter(action="operation.cancelled").count() == 1
    # A cancelled operation is never run, even if its message is delivered.
    operation_execute(org_id=str(world.acme.id), operation_id=str(op.pk))
    op.refresh_from_db()
    assert op.status == "cancelled" and op.attempts == 0
    assert_envelope(world.client("tester").post(url), 409, "conflict")


def test_the_same_exclusive_work_is_a_conflict_until_it_finishes(world):
    access = owner_access(world.acme)
    first = operation_start(org=world.acme, actor=access.user, kind="audit.export", exclusive_key="export:x")
    from lifecycle.errors import Conflict

    try:
        operation_start(org=world.acme, actor=access.user, kind="audit.export", exclusive_key="export:x")
    except Conflict as exc:
        assert exc.details == {"exclusive_key": "export:x"}
    else:
        raise AssertionError("a second active operation with the same key was allowed")
    Operation.objects.for_org(world.acme).filter(pk=first.pk).update(status="succeeded")
    operation_start(org=world.acme, actor=access.user, kind="audit.export", exclusive_key="export:x")


def test_a_poison_operation_gives_up(world, settings):
    settings.OPERATION_MAX_ATTEMPTS = 2
    op = make_operation(world.acme, status="running")
    Operation.objects.for_org(world.acme).filter(pk=op.pk).update(attempts=2)
    operation_execute(org_id=str(world.acme.id), operation_id=str(op.pk))
    op.refresh_from_db()
    assert op.status == "failed" and op.error["code"] == "gave_up"


def test_an_unexpected_error_fails_the_operation_without_leaking(world, caplog):
    from lifecycle.operations import _HANDLERS, operation_handler

    @operation_handler("test.boom")
    def boom(operation):
        raise RuntimeError("password=hunter2")

    try:
        op = make_operation(world.acme, kind="test.boom")
        operation_execute(org_id=str(world.acme.id), operation_id=str(op.pk))
        op.refresh_from_db()
        assert op.status == "failed"
        assert op.error == {
            "code": "internal",
            "message": "The operation failed unexpectedly.",
            "details": {},
        }
    finally:
        _HANDLERS.pop("test.boom")
