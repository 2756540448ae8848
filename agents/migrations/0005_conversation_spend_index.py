"""A stage's spend in a month summed from one index (rollouts.spending)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("agents", "0004_action_approval"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="conversation",
            index=models.Index(
                fields=["org", "stage", "started_at", "agent", "source", "cost"], name="conversation_spend"
            ),
        ),
    ]
