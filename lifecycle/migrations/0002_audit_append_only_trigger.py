"""PostgreSQL refuses UPDATE and DELETE on the audit log, whatever the client."""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION lifecycle_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER lifecycle_audit_append_only
    BEFORE UPDATE OR DELETE ON lifecycle_auditevent
    FOR EACH ROW EXECUTE FUNCTION lifecycle_audit_append_only();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS lifecycle_audit_append_only ON lifecycle_auditevent;
DROP FUNCTION IF EXISTS lifecycle_audit_append_only();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("lifecycle", "0001_initial")]

    operations = [migrations.RunPython(forward, backward)]
