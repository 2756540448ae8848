"""Re-encrypt every stored secret under the newest key of LIFECYCLE_ENCRYPTION_KEYS.

Put the new key first in the list (keep the old ones), deploy, run this, then drop the
old keys. Content hashes do not change: they are computed over the secrets in the clear.
"""

from django.core.management.base import BaseCommand
from django.db import transaction

from agents.models import Component, ComponentContent
from agents.secrets import has_sealed, rotated


class Command(BaseCommand):
    help = "Re-encrypt all secrets under the newest encryption key."

    def handle(self, *args, **options):
        total = 0
        # Maintenance across every org, by design: the loud name is the point.
        for model in (Component, ComponentContent):
            rows = model.objects.dangerously_unscoped().only("pk", "spec").order_by("pk")
            batch = []
            for row in rows.iterator(chunk_size=500):
                if has_sealed(row.spec):
                    row.spec = rotated(row.spec)
                    batch.append(row)
                if len(batch) >= 500:
                    total += self._save(model, batch)
                    batch = []
            total += self._save(model, batch)
        total += self._rotate_webhook_secrets()
        self.stdout.write(f"Re-encrypted secrets in {total} row(s).")

    def _rotate_webhook_secrets(self) -> int:
        from lifecycle import crypto
        from webhooks.models import Webhook

        rows = []
        for webhook in Webhook.objects.dangerously_unscoped().exclude(secret_encrypted="").order_by("pk"):
            webhook.secret_encrypted = crypto.rotate(webhook.secret_encrypted)
            rows.append(webhook)
        with transaction.atomic():
            Webhook.objects.dangerously_unscoped().bulk_update(rows, ["secret_encrypted"], batch_size=500)
        return len(rows)

    def _save(self, model, batch) -> int:
        if batch:
            with transaction.atomic():
                model.objects.dangerously_unscoped().bulk_update(batch, ["spec"])
        return len(batch)
