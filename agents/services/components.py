"""Changing an agent's components: create, update, delete."""

from __future__ import annotations

from collections.abc import Callable

from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.exceptions import ValidationError

from lifecycle.access import Access
from lifecycle.audit import audit_record
from lifecycle.errors import Conflict, Forbidden, Invalid, PreconditionFailed
from lifecycle.errors import flatten_fields as _flatten

from ..components import POLICY, SETTINGS
from ..hooks import components_changed
from ..models import Agent, Component, Tombstone
from ..secrets import content_hash, is_sealed, seal
from ..specs import validate_name, validate_spec


def require_change(access: Access, agent: Agent) -> None:
    if agent.archived:
        raise Conflict("The agent is archived; restore it by promoting or importing again.")
    if not access.can("change", agent):
        raise Forbidden("You cannot edit agents in this stage.")


def invalid(exc: ValidationError) -> Invalid:
    return Invalid(fields=_flatten(exc.detail))


def prepare(
    kind: str, name: str, raw_spec, *, stored: Component | None = None, field: str = "spec"
) -> tuple[str, dict, str]:
    """Validate a component's name and spec; return (name, stored spec, content hash).

    Errors name the spec `field` as the client sent it (`spec`, or `settings` on agents).
    """
    if kind not in POLICY:
        raise Invalid(fields={"kind": [f"Must be one of: {', '.join(POLICY)}."]})
    try:
        name = validate_name(kind, name)
        if isinstance(raw_spec, dict) and kind == "variable":
            # Sent back as read, a secret carries the read-only `is_set`; ignore it.
            raw_spec = {k: v for k, v in raw_spec.items() if k != "is_set"}
        spec = validate_spec(kind, raw_spec, field=field)
    except ValidationError as exc:
        raise invalid(exc) from exc
    if kind == "variable":
        spec = _merge_secret(stored.spec if stored else None, spec, raw_spec)
    stored_spec = seal(kind, spec)
    return name, stored_spec, content_hash(kind, name, stored_spec)


def _merge_secret(stored: dict | None, spec: dict, raw: dict) -> dict:
    """A secret's value is write-only: null or absent keeps what is stored."""
    value_given = isinstance(raw, dict) and raw.get("value") is not None
    if spec.get("secret") and not value_given:
        kept = (stored or {}).get("value")
        if stored and not stored.get("secret") and isinstance(kept, str):
            return {**spec, "value": kept}  # becoming secret: the same value, now sealed
        return {**spec, "value": kept if is_sealed(kept) else None}
    if not spec.get("secret") and stored and stored.get("secret") and not value_given:
        # Turning a secret into a plain variable would show it: a new value is required.
        raise Invalid(fields={"spec.value": ["Give a new value when a secret variable stops being secret."]})
    if not spec.get("secret") and spec.get("value") is None:
        # Left out of an update, a plain value stays as it was; a new variable starts empty.
        absent = not isinstance(raw, dict) or "value" not in raw
        kept = (stored or {}).get("value") if absent and stored and not stored.get("secret") else None
        return {**spec, "value": kept if isinstance(kept, str) else ""}
    return spec


def _check_references(agent: Agent, kind: str, spec: dict) -> None:
    tool = spec.get("tool") if kind == "skill" else None
    if (
        tool
        and not Component.objects.for_org(agent.org_id).filter(agent=agent, kind="tool", name=tool).exists()
    ):
        raise Invalid(fields={"spec.tool": [f"No tool named '{tool}' in this agent."]})


def _touch(agent: Agent) -> None:
    Agent.objects.for_org(agent.org_id).filter(pk=agent.pk).update(
        has_unsaved_changes=True, updated_at=timezone.now()
    )
    agent.has_unsaved_changes = True
    components_changed(agent=agent)


def _name_conflict(kind: str, name: str) -> Invalid:
    message = f"This agent already has a {kind.replace('_', ' ')} named '{name}'."
    return Invalid(message, fields={"name": [message]})


def _require_free_name(agent: Agent, kind: str, name: str, *, exclude=None) -> None:
    """400 `fields.name` for a name this kind already uses in the agent.

    The check gives the clear answer; the database constraint (component_name_unique_per_kind)
    still decides a race between two requests, mapped to the same answer.
    """
    taken = Component.objects.for_org(agent.org_id).filter(agent=agent, kind=kind, name=name)
    if exclude is not None:
        taken = taken.exclude(pk=exclude.pk)
    if taken.exists():
        raise _name_conflict(kind, name)


def component_create(*, access: Access, agent: Agent, kind: str, name: str, spec) -> Component:
    require_change(access, agent)
    if kind in POLICY and POLICY[kind].singleton:
        raise Conflict(f"An agent has exactly one {kind} component; update it instead.")
    name, stored_spec, digest = prepare(kind, name, spec)
    _check_references(agent, kind, stored_spec)
    _require_free_name(agent, kind, name)
    try:
        with transaction.atomic():
            component = Component.objects.create(
                org_id=agent.org_id, agent=agent, kind=kind, name=name, spec=stored_spec, content_hash=digest
            )
            _touch(agent)
            audit_record(
                org=access.org,
                actor=access.user,
                action="component.create",
                target=agent,
                changes={"uid": str(component.uid), "kind": kind, "name": name},
            )
    except IntegrityError as exc:
        raise _name_conflict(kind, name) from exc
    return component


def expect_hash(expected: str) -> Callable[[Component], None]:
    """A guard for component_update: 412 unless the row still has the hash the client saw."""

    def guard(locked: Component) -> None:
        if locked.content_hash != expected:
            raise PreconditionFailed(STALE_MESSAGE)

    return guard


STALE_MESSAGE = "Someone saved this since you opened it."


def component_update(
    *,
    access: Access,
    component: Component,
    name: str | None = None,
    spec=None,
    field: str = "spec",
    guard: Callable[[Component], None] | None = None,
) -> Component:
    """Update a component; a write conditional on what the client saw passes a `guard`.

    The guard runs on the row locked (select_for_update) inside the transaction, so two
    writes made from the same state cannot both pass: check and write are one step.
    """
    agent = component.agent
    require_change(access, agent)
    try:
        with transaction.atomic():
            locked = Component.objects.for_org(agent.org_id).select_for_update().get(pk=component.pk)
            locked.agent = agent
            if guard is not None:
                guard(locked)
            new_name = locked.name if name is None else name
            raw_spec = component_api_spec(locked) if spec is None else spec
            new_name, stored_spec, digest = prepare(
                locked.kind, new_name, raw_spec, stored=locked, field=field
            )
            _check_references(agent, locked.kind, stored_spec)
            if digest == locked.content_hash:
                return locked  # nothing changed: no write, no audit noise
            if new_name != locked.name:
                _require_free_name(agent, locked.kind, new_name, exclude=locked)
            changed = sorted(_changed_fields(locked, new_name, stored_spec))
            locked.name, locked.spec, locked.content_hash = new_name, stored_spec, digest
            locked.needs_review = False  # edited in this stage: reviewed
            locked.save(update_fields=["name", "spec", "content_hash", "needs_review", "updated_at"])
            _touch(agent)
            audit_record(
                org=access.org,
                actor=access.user,
                action="component.update",
                target=agent,
                changes={
                    "uid": str(locked.uid),
                    "kind": locked.kind,
                    "name": new_name,
                    "fields": changed,
                },
            )
    except IntegrityError as exc:
        raise _name_conflict(component.kind, name or component.name) from exc
    return locked


def component_api_spec(component: Component) -> dict:
    """The spec as a client would send it back: a secret's value is null (kept as is)."""
    if component.kind == "variable" and component.spec.get("secret"):
        return {**component.spec, "value": None}
    return component.spec


def _changed_fields(component: Component, name: str, spec: dict) -> set[str]:
    changed = {
        f"spec.{key}" for key in set(spec) | set(component.spec) if spec.get(key) != component.spec.get(key)
    }
    if name != component.name:
        changed.add("name")
    return changed


def component_delete(
    *, access: Access, component: Component, guard: Callable[[Component], None] | None = None
) -> None:
    """Delete a component; `guard` (If-Match) runs on the locked row, as in component_update."""
    agent = component.agent
    require_change(access, agent)
    if component.kind == SETTINGS:
        raise Conflict("The settings component cannot be deleted.")
    with transaction.atomic():
        locked = Component.objects.for_org(agent.org_id).select_for_update().filter(pk=component.pk).first()
        if locked is None:
            return  # deleted meanwhile: the outcome asked for
        if guard is not None:
            guard(locked)
        delete_components(agent, [locked])
        _touch(agent)
        audit_record(
            org=access.org,
            actor=access.user,
            action="component.delete",
            target=agent,
            changes={"uid": str(component.uid), "kind": component.kind, "name": component.name},
        )


def delete_components(agent: Agent, components) -> None:
    """Delete rows; a synced one leaves a tombstone so a pull does not offer it again."""
    components = list(components)
    Tombstone.objects.bulk_create(
        [
            Tombstone(
                org_id=agent.org_id,
                agent=agent,
                uid=c.uid,
                kind=c.kind,
                name=c.name,
                synced_hash=c.synced_hash,
            )
            for c in components
            if c.synced_hash
        ],
        ignore_conflicts=True,
    )
    Component.objects.for_org(agent.org_id).filter(agent=agent, pk__in=[c.pk for c in components]).delete()
