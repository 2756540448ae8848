"""Long work: the lease, cancelling running work, child operations, audited failures.

Transactional tests: the work commits for real, so on-commit steps (enqueueing,
settling a parent) run as they would on a worker, and checkpoints outside a
transaction write the row as they do there.
"""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Stage
from lifecycle.audit import AuditEvent
from lifecycle.audit_export import OperationArtifact
from lifecycle.constraints import constraint_violated
from lifecycle.errors import Conflict
from lifecycle.operations import (
    _HANDLERS,
    Operation,
    operation_execute,
    operation_finish,
    operation_handler,
    operation_heartbeat,
    operation_live_progress,
    operation_progress,
    operation_start,
)
from tests.api_mixin import assert_envelope
from tests.factories import signed_in

pytestmark = pytest.mark.django_db(transaction=True)
OPS = "/api/v1/orgs/{org}/operations/"
CALLS: list[str] = []


@pytest.fixture
def handler():
    """Register a handler for one test: handler("kind")(fn)."""
    kinds = []
    CALLS.clear()

    def register(kind):
        kinds.append(kind)
        return operation_handler(kind)

    yield register
    for kind in kinds:
        _HANDLERS.pop(kind, None)


def artifact(operation, name="work.txt"):
    """The handler's 'work': a row that commits or rolls back with its transaction."""
    return OperationArtifact.objects.create(
        org_id=operation.org_id, operation=operation, filename=name, content_type="text/plain", content=b"x"
    )


def reload(operation) -> Operation:
    return Operation.objects.for_org(operation.org_id).get(pk=operation.pk)


def actions(org, prefix="operation."):
    return list(
        AuditEvent.objects.for_org(org)
        .filter(action__startswith=prefix)
        .order_by("created_at")
        .values_list("action", flat=True)
    )


def start(world, kind, *, who="tester", stage=None, status="queued", **kwargs) -> Operation:
    # Recorded but not run yet: tests run deliveries themselves.
    return Operation.objects.create(
        org=world.acme, kind=kind, requested_by=world.users[who], stage=stage, status=status, **kwargs
    )


def run(operation):
    return operation_execute(org_id=str(operation.org_id), operation_id=str(operation.pk))


# --- the lease ------------------------------------------------------------------------
def test_a_second_delivery_while_the_lease_is_live_does_not_run_the_handler(world, handler, settings):
    settings.OPERATION_LEASE_SECONDS = 60
    second = {}

    @handler("test.long")
    def long(operation):
        CALLS.append("run")
        # The broker hands the same message out again (visibility timeout) mid-work.
        second["look_again"] = run(operation)
        with transaction.atomic():
            artifact(operation)
            operation_finish(operation, result={"ok": True})

    op = start(world, "test.long")
    assert run(op) is None
    op = reload(op)
    assert CALLS == ["run"], "the redelivery ran the handler a second time"
    assert 0 < second["look_again"] <= 61, "the redelivery should look again when the lease would lapse"
    assert op.status == "succeeded" and op.attempts == 1
    assert OperationArtifact.objects.for_org(world.acme).filter(operation=op).count() == 1


def test_a_lapsed_lease_lets_a_redelivery_take_over(world, handler):
    @handler("test.resume")
    def resume(operation):
        CALLS.append(operation.lease_owner)

    op = start(world, "test.resume")
    Operation.objects.for_org(world.acme).filter(pk=op.pk).update(
        status="running",
        attempts=1,
        lease_owner="dead-worker",
        lease_expires_at=timezone.now() - timedelta(seconds=1),
    )
    assert run(op) is None
    op = reload(op)
    assert op.status == "succeeded" and op.attempts == 2
    assert CALLS and CALLS[0] != "dead-worker"


def test_a_live_lease_held_elsewhere_is_left_alone(world, handler):
    @handler("test.elsewhere")
    def elsewhere(operation):
        CALLS.append("run")

    op = start(world, "test.elsewhere")
    Operation.objects.for_org(world.acme).filter(pk=op.pk).update(
        status="running",
        attempts=1,
        lease_owner="busy-worker",
        lease_expires_at=timezone.now() + timedelta(seconds=30),
    )
    look_again = run(op)
    op = reload(op)
    assert CALLS == [] and op.status == "running" and op.attempts == 1 and op.lease_owner == "busy-worker"
    assert 29 <= look_again <= 32


def test_progress_and_heartbeat_renew_the_lease(world, handler, settings):
    settings.OPERATION_LEASE_SECONDS = 5
    seen = []

    @handler("test.renew")
    def renew(operation):
        first = reload(operation).lease_expires_at
        Operation.objects.for_org(operation.org_id).filter(pk=operation.pk).update(
            lease_expires_at=timezone.now() + timedelta(seconds=1)
        )
        operation_heartbeat(operation)
        seen.append(reload(operation).lease_expires_at - first)
        operation_progress(operation, 40)
        row = reload(operation)
        seen.append(row.progress)

    op = start(world, "test.renew")
    run(op)
    assert seen[0] >= timedelta(0), "the heartbeat did not push the lease out again"
    assert seen[1] == 40, "progress outside a transaction is written to the row"


def test_a_delivery_that_lost_its_lease_cannot_finish(world, handler):
    @handler("test.overtaken")
    def overtaken(operation):
        # This worker stalled, its lease lapsed and another delivery took over.
        Operation.objects.for_org(operation.org_id).filter(pk=operation.pk).update(lease_owner="rescuer")
        with transaction.atomic():
            artifact(operation)
            operation_finish(operation, result={})

    op = start(world, "test.overtaken")
    run(op)
    op = reload(op)
    assert op.status == "running" and op.lease_owner == "rescuer"
    assert not OperationArtifact.objects.for_org(world.acme).exists(), "the overtaken work was committed"


def test_a_checkpoint_inside_the_work_sees_a_takeover(world, handler):
    @handler("test.overtaken_early")
    def overtaken(operation):
        Operation.objects.for_org(operation.org_id).filter(pk=operation.pk).update(lease_owner="rescuer")
        cache.set(f"operation-lease:{operation.pk}", {"owner": "rescuer", "expires": 0})
        with transaction.atomic():
            artifact(operation)
            operation_progress(operation, 50)
            CALLS.append("went on")

    op = start(world, "test.overtaken_early")
    run(op)
    assert CALLS == [] and reload(op).lease_owner == "rescuer"
    assert not OperationArtifact.objects.for_org(world.acme).exists()


# --- cancelling -------------------------------------------------------------------------
def test_cancel_queued_and_waiting_operations_at_once(world):
    for status in ("queued", "awaiting_approval"):
        op = start(world, "audit.export", status=status)
        response = world.client("tester").post(OPS.format(org="acme") + f"{op.pk}/cancel/")
        assert response.status_code == 200, response.content
        assert response.json()["status"] == "cancelled"
    assert actions(world.acme) == ["operation.cancelled", "operation.cancelled"]


def test_cancel_running_work_is_cooperative_and_rolls_it_back(world, handler):
    responses = {}

    @handler("test.cancellable")
    def cancellable(operation):
        operation_progress(operation, 10)
        # Someone presses Cancel while the work runs.
        responses["cancel"] = world.client("tester").post(OPS.format(org="acme") + f"{operation.pk}/cancel/")
        with transaction.atomic():
            artifact(operation)
            CALLS.append("before checkpoint")
            operation_progress(operation, 50)
            CALLS.append("after checkpoint")
            operation_finish(operation, result={})

    op = start(world, "test.cancellable")
    run(op)
    body = responses["cancel"].json()
    assert (
        responses["cancel"].status_code == 200 and body["status"] == "running" and body["cancel_requested_at"]
    )
    op = reload(op)
    assert op.status == "cancelled" and op.finished_at is not None
    assert CALLS == ["before checkpoint"]
    assert not OperationArtifact.objects.for_org(world.acme).exists(), "cancelled work was committed"
    assert actions(world.acme) == ["operation.cancel_requested", "operation.cancelled"]
    requested = AuditEvent.objects.for_org(world.acme).get(action="operation.cancel_requested")
    assert requested.actor_id == world.users["tester"].pk
    assert_envelope(world.client("tester").post(OPS.format(org="acme") + f"{op.pk}/cancel/"), 409, "conflict")


def test_cancel_requested_before_a_redelivery_ends_it_without_running(world, handler):
    @handler("test.never")
    def never(operation):
        CALLS.append("run")

    op = start(world, "test.never")
    # Running on a worker that died; its lease has lapsed: cancelling ends it at once.
    Operation.objects.for_org(world.acme).filter(pk=op.pk).update(
        status="running",
        attempts=1,
        lease_owner="dead",
        lease_expires_at=timezone.now() - timedelta(seconds=5),
    )
    assert (
        world.client("tester").post(OPS.format(org="acme") + f"{op.pk}/cancel/").json()["status"]
        == "cancelled"
    )
    run(op)
    assert CALLS == [] and reload(op).status == "cancelled"


def test_cancel_by_someone_who_sees_it_but_did_not_ask_is_403_and_audited(world):
    testing = Stage.objects.for_org(world.acme).get(slug="testing")
    op = start(world, "audit.export", who="admin", stage=testing)
    url = OPS.format(org="acme") + f"{op.pk}/cancel/"
    assert world.client("tester").get(OPS.format(org="acme") + f"{op.pk}/").status_code == 200
    assert_envelope(world.client("tester").post(url), 403, "forbidden")
    assert reload(op).status == "queued"
    assert AuditEvent.objects.for_org(world.acme).filter(action="access.denied").count() == 1
    # An org admin may cancel anyone's work.
    assert world.client("owner").post(url).json()["status"] == "cancelled"


def test_cancel_of_another_orgs_operation_is_404_like_a_missing_one(world):
    foreign = Operation.objects.create(org=world.globex, kind="audit.export", status="queued")
    client = world.client("owner")
    response = client.post(OPS.format(org="acme") + f"{foreign.pk}/cancel/")
    missing = client.post(OPS.format(org="acme") + "00000000-0000-4000-8000-000000000000/cancel/")
    assert_envelope(response, 404, "not_found")
    assert response.json() == missing.json()
    assert reload(foreign).status == "queued"
    # And under the other org's URL: not a member there.
    assert_envelope(client.post(OPS.format(org="globex") + f"{foreign.pk}/cancel/"), 404, "not_found")


# --- audited failures -----------------------------------------------------------------
def test_failures_are_audited_with_code_and_message_only(world, handler, caplog):
    @handler("test.refused")
    def refused(operation):
        raise Conflict("The lineage moved on meanwhile.")

    @handler("test.crashed")
    def crashed(operation):
        raise RuntimeError("password=hunter2 in a stack frame")

    refused_op, crashed_op = start(world, "test.refused"), start(world, "test.crashed")
    run(refused_op)
    run(crashed_op)
    events = {
        e.target_id: e for e in AuditEvent.objects.for_org(world.acme).filter(action="operation.failed")
    }
    assert events[str(refused_op.pk)].changes == {
        "kind": "test.refused",
        "code": "conflict",
        "message": "The lineage moved on meanwhile.",
    }
    assert events[str(crashed_op.pk)].changes == {
        "kind": "test.crashed",
        "code": "internal",
        "message": "The operation failed unexpectedly.",
    }
    assert "hunter2" not in str(events[str(crashed_op.pk)].changes)
    assert "Traceback" in caplog.text and "RuntimeError" in caplog.text, "the stack belongs in the log"


def test_giving_up_is_audited(world, settings):
    settings.OPERATION_MAX_ATTEMPTS = 1
    op = start(world, "audit.export")
    Operation.objects.for_org(world.acme).filter(pk=op.pk).update(status="running", attempts=1)
    run(op)
    assert reload(op).status == "failed"
    assert actions(world.acme) == ["operation.failed"]


# --- parent and children --------------------------------------------------------------
def test_a_parent_succeeds_only_once_its_children_have(world, handler):
    @handler("test.child")
    def child(operation):
        CALLS.append(f"child {operation.params['n']}")

    @handler("test.parent")
    def parent(operation):
        with transaction.atomic():
            for n in (1, 2):
                operation_start(
                    org=operation.org,
                    actor=None,
                    kind="test.child",
                    params={"n": n},
                    parent=operation,
                    status="awaiting_approval" if n == 2 else "queued",
                )
            operation_finish(operation, result={"parent": "done"})

    op = start(world, "test.parent")
    run(op)
    op = reload(op)
    assert CALLS == ["child 1"]
    # Child 2 still waits: so does the parent, its own work done.
    assert op.status == "running" and op.result == {"parent": "done"}
    body = world.client("tester").get(OPS.format(org="acme") + f"{op.pk}/").json()
    assert [(c["status"], c["progress"]) for c in body["children"]] == [
        ("succeeded", 100),
        ("awaiting_approval", 0),
    ]
    assert body["progress"] == (100 + 100 + 0) // 3
    assert {c["id"] for c in body["children"]} == {
        str(i) for i in Operation.objects.for_org(world.acme).filter(parent=op).values_list("id", flat=True)
    }
    # A redelivery of the parent does not run its handler again.
    CALLS.clear()
    assert run(op) is None and CALLS == []

    second = Operation.objects.for_org(world.acme).get(parent=op, status="awaiting_approval")
    Operation.objects.for_org(world.acme).filter(pk=second.pk).update(status="queued")
    run(second)
    op = reload(op)
    assert op.status == "succeeded" and op.progress == 100 and op.result == {"parent": "done"}


def test_a_parent_fails_when_a_child_does(world, handler):
    @handler("test.bad_child")
    def bad_child(operation):
        raise Conflict("nope")

    @handler("test.parent_of_bad")
    def parent(operation):
        with transaction.atomic():
            operation_start(org=operation.org, actor=None, kind="test.bad_child", parent=operation)
            operation_finish(operation, result={})

    op = start(world, "test.parent_of_bad")
    run(op)
    op = reload(op)
    assert op.status == "failed" and op.error["code"] == "child_failed"
    assert actions(world.acme).count("operation.failed") == 2


def test_cancelling_a_parent_cancels_its_children(world, handler):
    @handler("test.waiting_child")
    def waiting_child(operation):
        CALLS.append("child ran")

    parent = start(world, "test.waiting_child")
    children = [
        Operation.objects.create(org=world.acme, kind="test.waiting_child", parent=parent, status=status)
        for status in ("queued", "awaiting_approval")
    ]
    grandchild = Operation.objects.create(org=world.acme, kind="test.waiting_child", parent=children[0])
    response = world.client("tester").post(OPS.format(org="acme") + f"{parent.pk}/cancel/")
    assert response.json()["status"] == "cancelled"
    for op in [*children, grandchild]:
        assert reload(op).status == "cancelled"
        run(op)
    assert CALLS == []
    assert actions(world.acme) == ["operation.cancelled"] * 4


def test_no_children_for_a_finished_parent(world):
    op = start(world, "audit.export", status="succeeded")
    with pytest.raises(Conflict):
        operation_start(org=world.acme, actor=None, kind="audit.export", parent=op)


def test_live_progress_of_a_plain_operation_is_its_own(world):
    op = start(world, "audit.export", status="running")
    Operation.objects.for_org(world.acme).filter(pk=op.pk).update(progress=30)
    assert operation_live_progress(reload(op)) == 30


# --- constraints by name ----------------------------------------------------------------
def _violation(callable_) -> IntegrityError:
    try:
        with transaction.atomic():
            callable_()
    except IntegrityError as exc:
        return exc
    raise AssertionError("no IntegrityError")


def test_constraint_violated_names_the_constraint(world):
    Operation.objects.create(org=world.acme, kind="audit.export", exclusive_key="k")
    exc = _violation(lambda: Operation.objects.create(org=world.acme, kind="audit.export", exclusive_key="k"))
    assert constraint_violated(exc, "operation_one_active_per_key")
    assert not constraint_violated(exc, "some_other_constraint")
    # A different violation whose message also says "unique" (a second row with the same pk).
    existing = Operation.objects.for_org(world.acme).first()
    exc = _violation(lambda: Operation.objects.create(id=existing.pk, org=world.acme, kind="x"))
    assert not constraint_violated(exc, "operation_one_active_per_key")


# --- the operation page -----------------------------------------------------------------
def test_the_operation_page_cancels_for_the_requester_only(world):
    testing = Stage.objects.for_org(world.acme).get(slug="testing")
    op = start(world, "audit.export", who="admin", stage=testing)
    url = f"/orgs/acme/operations/{op.pk}/"
    tester = signed_in(world.users["tester"])
    page = tester.get(url).content.decode()
    assert "Cancel operation" not in page
    assert tester.post(url).status_code == 403
    assert reload(op).status == "queued"
    admin = signed_in(world.users["admin"])
    page = admin.get(url).content.decode()
    assert "Cancel operation" in page and "hx-confirm=" in page and "onsubmit" not in page
    assert admin.post(url).status_code == 302
    assert reload(op).status == "cancelled"
    assert "Cancel operation" not in admin.get(url).content.decode()
