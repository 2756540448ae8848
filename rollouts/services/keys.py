"""Stage API keys for the gateway: created by admins, shown once, stored as SHA-256."""

from __future__ import annotations

import secrets

from django.db import transaction
from django.utils import timezone

from accounts.models import Stage
from accounts.tokens import hash_key
from lifecycle.access import Access
from lifecycle.audit import audit_record
from lifecycle.errors import Forbidden, Invalid

from ..models import StageKey

KEY_PREFIX = "lcs_"


def _require_admin(access: Access) -> None:
    if not access.is_admin:
        raise Forbidden("Only owners and admins manage stage API keys.")


def stage_key_create(*, access: Access, stage: Stage, name: str) -> tuple[StageKey, str]:
    _require_admin(access)
    name = (name or "").strip()
    if not name:
        raise Invalid(fields={"name": ["Name the key after what uses it."]})
    raw = KEY_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        key = StageKey.objects.create(
            org=access.org,
            stage=stage,
            name=name,
            prefix=raw[: len(KEY_PREFIX) + 6],
            key_hash=hash_key(raw),
            created_by=access.user,
        )
        audit_record(
            org=access.org,
            actor=access.user,
            action="stage_key.create",
            target=key,
            changes={"stage": stage.slug, "name": name},
        )
    return key, raw


def stage_key_revoke(*, access: Access, key: StageKey) -> StageKey:
    _require_admin(access)
    if key.revoked_at is None:
        with transaction.atomic():
            key.revoked_at = timezone.now()
            key.save(update_fields=["revoked_at"])
            audit_record(
                org=access.org,
                actor=access.user,
                action="stage_key.revoke",
                target=key,
                changes={"stage": key.stage.slug, "name": key.name},
            )
    return key
