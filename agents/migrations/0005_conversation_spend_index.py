"""A stage's spend in a month summed from one index (rollouts.spending)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    # 0004 is reserved for action approvals (agents/0004_action_approval): whichever of the
    # two lands second makes this one depend on it, so agents keeps a single leaf.
    dependencies = [
        ("agents", "0003_component_unique_name"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="conversation",
            index=models.Index(
                fields=["org", "stage", "started_at", "agent", "source", "cost"], name="conversation_spend"
            ),
        ),
    ]
