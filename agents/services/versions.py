"""Versions: save points, restore."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from lifecycle.access import Access
from lifecycle.audit import audit_record
from lifecycle.errors import Invalid, NotFound

from ..hooks import change_guard, version_written
from ..models import Agent, AgentVersion, Component, Tombstone, VersionReason
from ..versioning import contents_by_hash, current_entries, snapshot
from .components import delete_components, require_change

CHANGELOG_REQUIRED = "Write a changelog: what changed, and why."


def require_changelog(changelog: str) -> str:
    """Where a person is asked for a changelog, a blank one is refused (the history is for reviewers)."""
    text = (changelog or "").strip()
    if not text:
        raise Invalid(CHANGELOG_REQUIRED, fields={"changelog": [CHANGELOG_REQUIRED]})
    return text


def version_write(
    *,
    actor,
    agent: Agent,
    changelog: str = "",
    reason: str = VersionReason.SAVE,
    source_version: AgentVersion | None = None,
) -> AgentVersion:
    """Snapshot the working copy as the agent's next version. Call inside a transaction."""
    locked = Agent.objects.for_org(agent.org_id).select_for_update().get(pk=agent.pk)
    manifest = snapshot(agent)
    number = locked.version + 1
    version = AgentVersion.objects.create(
        org_id=agent.org_id,
        agent=agent,
        number=number,
        changelog=changelog,
        author=actor if getattr(actor, "is_authenticated", False) else None,
        reason=reason,
        source_version=source_version,
        manifest=manifest,
    )
    Agent.objects.for_org(agent.org_id).filter(pk=agent.pk).update(
        version=number, has_unsaved_changes=False, updated_at=timezone.now()
    )
    agent.version, agent.has_unsaved_changes = number, False
    # Whether this version goes live now is the stage policy's call (rollouts).
    version_written(actor=actor, agent=agent, version=version)
    return version


def version_save(*, access: Access, agent: Agent, changelog: str = "") -> AgentVersion:
    """A manual save point."""
    require_change(access, agent)
    with transaction.atomic():
        version = version_write(
            actor=access.user, agent=agent, changelog=changelog, reason=VersionReason.SAVE
        )
        audit_record(
            org=access.org,
            actor=access.user,
            action="version.save",
            target=agent,
            changes={"version": version.number, "changelog": changelog[:500]},
        )
    return version


def version_restore(
    *, access: Access, agent: Agent, number: int, changelog: str = "", override_freeze: dict | None = None
) -> AgentVersion:
    """Make the working copy what version `number` held, and save that as a new version."""
    require_change(access, agent)
    source = AgentVersion.objects.for_org(agent.org_id).filter(agent=agent, number=number).first()
    if source is None:
        raise Invalid(fields={"version": [f"This agent has no version {number}."]})
    # The stage's policy (freeze windows, gate) is asked through a hook: rollouts owns it.
    decided = change_guard(access=access, kind="restore", agent=agent, override_freeze=override_freeze)
    with transaction.atomic():
        apply_manifest(agent, source.manifest.entries)
        version = version_write(
            actor=access.user,
            agent=agent,
            changelog=changelog or f"Restored version {number}.",
            reason=VersionReason.RESTORE,
            source_version=source,
        )
        audit_record(
            org=access.org,
            actor=access.user,
            action="version.restore",
            target=agent,
            changes={"restored": number, "version": version.number, **decided},
        )
    return version


def apply_manifest(agent: Agent, entries: list[list[str]]) -> None:
    """Rewrite the working copy to hold exactly `entries` (uid, hash), from stored contents."""
    wanted = dict(entries)
    current = {uid: digest for uid, digest in current_entries(agent)}
    components = Component.objects.for_org(agent.org_id).filter(agent=agent)
    gone = [c for c in components.filter(uid__in=[u for u in current if u not in wanted])]
    delete_components(agent, gone)
    changed = {uid for uid, digest in wanted.items() if uid in current and current[uid] != digest}
    added = {uid for uid in wanted if uid not in current}
    contents = contents_by_hash(agent.org_id, [wanted[uid] for uid in changed | added])
    if len(contents) < len({wanted[uid] for uid in changed | added}):
        raise NotFound("Some contents of that version are missing.")
    updates = []
    for component in components.filter(uid__in=changed):
        content = contents[wanted[str(component.uid)]]
        component.name, component.spec, component.content_hash = content.name, content.spec, content.hash
        updates.append(component)
    Component.objects.for_org(agent.org_id).bulk_update(updates, ["name", "spec", "content_hash"])
    tombstones = {
        str(t.uid): t.synced_hash
        for t in Tombstone.objects.for_org(agent.org_id).filter(agent=agent, uid__in=added)
    }
    Component.objects.bulk_create(
        Component(
            org_id=agent.org_id,
            agent=agent,
            uid=uid,
            kind=contents[wanted[uid]].kind,
            name=contents[wanted[uid]].name,
            spec=contents[wanted[uid]].spec,
            content_hash=wanted[uid],
            synced_hash=tombstones.get(uid, ""),
        )
        for uid in sorted(added)
    )
    Tombstone.objects.for_org(agent.org_id).filter(agent=agent, uid__in=added).delete()
