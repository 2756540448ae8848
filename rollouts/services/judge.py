"""The org's LLM judge settings: one row per org, written by owners and admins."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from lifecycle import crypto
from lifecycle.access import Access
from lifecycle.audit import audit_record
from lifecycle.errors import Forbidden
from lifecycle.outbound import check_url

from ..evaluators.judge import chat_url
from ..models import JudgeSettings

# `key` not given: keep the stored one (a client that read `is_set` cannot send it back).
KEEP = object()


def judge_settings_of(org) -> JudgeSettings | None:
    """The org's judge settings, or None when it has never configured one."""
    return JudgeSettings.objects.for_org(org).first()


def judge_represent(settings: JudgeSettings | None) -> dict:
    """What GET returns: never the key, only whether one is stored."""
    if settings is None:
        return {"base_url": None, "model": None, "enabled": False, "is_set": False, "updated_at": None}
    return {
        "base_url": settings.base_url,
        "model": settings.model,
        "enabled": settings.enabled,
        "is_set": bool(settings.key_encrypted),
        "updated_at": settings.updated_at.isoformat() if settings.updated_at else None,
    }


def judge_settings_update(
    *, access: Access, base_url: str, model: str, enabled: bool = True, key=KEEP, guard=None
) -> JudgeSettings:
    """Set the org's judge (owners and admins). `key` "" or None removes the stored key.

    The endpoint must be reachable under the outbound rules (no private addresses), checked
    here so a refused URL is a 400 now rather than a silent "no score" in every run.
    """
    if not access.is_admin:
        raise Forbidden("Only org owners and admins configure the LLM judge.")
    check_url(chat_url(base_url))
    try:
        return _judge_write(access, base_url, model, enabled, key, guard)
    except IntegrityError:
        # Two first saves raced: the other created the row. Once more, now locking it, so
        # the guard (when given) compares against what the other wrote.
        return _judge_write(access, base_url, model, enabled, key, guard)


def _judge_write(access, base_url, model, enabled, key, guard) -> JudgeSettings:
    with transaction.atomic():
        settings = JudgeSettings.objects.for_org(access.org).select_for_update().first()
        if settings is not None and guard is not None:
            guard(settings)
        created = settings is None
        settings = settings or JudgeSettings(org=access.org)
        changed = [
            name
            for name, value in (("base_url", base_url), ("model", model), ("enabled", enabled))
            if created or getattr(settings, name) != value
        ]
        settings.base_url, settings.model, settings.enabled = base_url, model, enabled
        if key is not KEEP:
            settings.key_encrypted = crypto.encrypt(key) if key else ""
            changed.append("key")
        settings.updated_by = access.user
        settings.save()
        audit_record(
            org=access.org,
            actor=access.user,
            action="evaluation.judge_updated",
            target=settings,
            # Which parts changed and the new endpoint, never the key itself.
            changes={
                "changed": changed,
                "base_url": base_url,
                "model": model,
                "enabled": enabled,
                "key_set": bool(settings.key_encrypted),
            },
        )
    return settings
