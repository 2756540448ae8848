"""One component name per kind in an agent, for every kind (it was settings, tool, variable).

Existing duplicates are renamed first ("greet" twice becomes "greet" and "greet (2)"), with
their content hash recomputed, so the constraint can be added on any existing database.
"""

from django.db import migrations, models


def rename_duplicates(apps, schema_editor):
    from agents.secrets import content_hash

    Component = apps.get_model("agents", "Component")
    # Historical models carry a plain manager: this runs across every org on purpose.
    seen: dict = {}
    for component in Component.objects.order_by("agent_id", "kind", "name", "id").iterator():
        key = (component.agent_id, component.kind)
        names = seen.setdefault(key, set())
        if component.name not in names:
            names.add(component.name)
            continue
        n = 2
        while f"{component.name} ({n})" in names:
            n += 1
        component.name = f"{component.name} ({n})"
        names.add(component.name)
        component.content_hash = content_hash(component.kind, component.name, component.spec)
        component.save(update_fields=["name", "content_hash"])


class Migration(migrations.Migration):
    # The renames commit before the constraint is built: PostgreSQL refuses to alter a table
    # with pending trigger events from rows updated in the same transaction.
    atomic = False
    dependencies = [("agents", "0002_agent_live_version")]

    operations = [
        migrations.RemoveConstraint(model_name="component", name="component_name_unique_for_named_kinds"),
        migrations.RunPython(rename_duplicates, migrations.RunPython.noop, atomic=True),
        migrations.AddConstraint(
            model_name="component",
            constraint=models.UniqueConstraint(
                fields=("agent", "kind", "name"), name="component_name_unique_per_kind"
            ),
        ),
    ]
