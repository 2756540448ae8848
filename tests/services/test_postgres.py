"""What only PostgreSQL enforces."""

import pytest
from django.db import DatabaseError, connection, transaction

from lifecycle.audit import AuditEvent, audit_record
from tests.factories import make_org, owner_access

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_audit_trigger_refuses_update_and_delete_from_any_client():
    org = make_org()
    event = audit_record(org=org, actor=owner_access(org).user, action="test.kept")
    for sql in (
        "UPDATE lifecycle_auditevent SET action = 'tampered' WHERE id = %s",
        "DELETE FROM lifecycle_auditevent WHERE id = %s",
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql, [event.pk])
    assert AuditEvent.objects.for_org(org).get(pk=event.pk).action == "test.kept"


def test_nul_characters_never_reach_postgresql(world_pg):
    client, _ = world_pg
    response = client.post("/api/v1/orgs/acme/stages/", {"name": "bad\x00name"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"


@pytest.fixture
def world_pg():
    from tests.factories import make_world

    world = make_world()
    return world.client("admin"), world


def test_the_audit_trigger_refuses_truncate_from_any_client():
    import psycopg

    org = make_org()
    event = audit_record(org=org, actor=owner_access(org).user, action="test.kept")
    db = connection.settings_dict
    # A client of its own, without the test suite's flush allowance.
    with psycopg.connect(
        dbname=db["NAME"],
        user=db["USER"],
        password=db["PASSWORD"] or None,
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
    ) as other:
        for sql in (
            "TRUNCATE lifecycle_auditevent",
            "TRUNCATE lifecycle_auditevent CASCADE",
            "TRUNCATE accounts_organization CASCADE",  # reaches the audit log through its FK
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                other.execute(sql)
            other.rollback()
    assert AuditEvent.objects.for_org(org).get(pk=event.pk).action == "test.kept"
