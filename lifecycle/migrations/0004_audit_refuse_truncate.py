"""PostgreSQL refuses TRUNCATE of the audit log too (row triggers never see a TRUNCATE).

The one exception is the test suite's own flush between transactional tests: Django
empties every table with TRUNCATE. It is allowed only on a database whose name starts
with `test_` (the test runner's) and a connection that sets
`lifecycle.test_allow_audit_truncate` (lifecycle/settings_test.py does).
"""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION lifecycle_audit_refuse_truncate() RETURNS trigger AS $$
BEGIN
    IF current_database() LIKE 'test\\_%'
       AND current_setting('lifecycle.test_allow_audit_truncate', true) = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'the audit log is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER lifecycle_audit_refuse_truncate
    BEFORE TRUNCATE ON lifecycle_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION lifecycle_audit_refuse_truncate();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS lifecycle_audit_refuse_truncate ON lifecycle_auditevent;
DROP FUNCTION IF EXISTS lifecycle_audit_refuse_truncate();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("lifecycle", "0003_operation_lease")]

    operations = [migrations.RunPython(forward, backward)]
