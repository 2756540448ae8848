from django.db import IntegrityError, transaction
from django.db.models import ProtectedError
from django.utils.text import slugify

from lifecycle.access import Access
from lifecycle.audit import audit_record
from lifecycle.errors import Conflict, Forbidden, Invalid

from ..models import Stage

MAX_STAGES = 12


def _require_admin(access: Access) -> None:
    if not access.is_admin:
        raise Forbidden("Only owners and admins can change stages.")


def _renumber(org, ordered: list[Stage]) -> None:
    for index, stage in enumerate(ordered):
        stage.position = index
    Stage.objects.for_org(org).bulk_update(ordered, ["position"])


def stage_create(*, access: Access, name: str, slug: str | None = None, position: int | None = None) -> Stage:
    """Add a stage, at the end unless a position is given."""
    _require_admin(access)
    name = name.strip()
    if not name:
        raise Invalid(fields={"name": ["This field may not be blank."]})
    slug = slug or slugify(name)
    if not slug or slugify(slug) != slug:
        raise Invalid(fields={"slug": ["Use lowercase letters, digits and hyphens."]})
    with transaction.atomic():
        stages = list(Stage.objects.for_org(access.org).select_for_update().order_by("position"))
        if len(stages) >= MAX_STAGES:
            raise Conflict(f"An organization can have at most {MAX_STAGES} stages.")
        if any(s.slug == slug for s in stages):
            raise Conflict(f"A stage with the slug '{slug}' already exists.")
        index = len(stages) if position is None else max(0, min(int(position), len(stages)))
        try:
            stage = Stage.objects.create(org=access.org, slug=slug, name=name, position=len(stages))
        except IntegrityError as exc:
            raise Conflict(f"A stage with the slug '{slug}' already exists.") from exc
        stages.insert(index, stage)
        _renumber(access.org, stages)
        audit_record(
            org=access.org,
            actor=access.user,
            action="stage.create",
            target=stage,
            changes={"name": name, "slug": slug, "position": index},
        )
    return stage


def stage_update(
    *, access: Access, stage: Stage, name: str | None = None, position: int | None = None
) -> Stage:
    """Rename or move a stage. Its slug never changes."""
    _require_admin(access)
    changes: dict = {}
    with transaction.atomic():
        stages = list(Stage.objects.for_org(access.org).select_for_update().order_by("position"))
        current = next(s for s in stages if s.pk == stage.pk)
        if name is not None:
            name = name.strip()
            if not name:
                raise Invalid(fields={"name": ["This field may not be blank."]})
            if name != current.name:
                changes["name"] = [current.name, name]
                current.name = name
                current.save(update_fields=["name"])
        if position is not None:
            index = max(0, min(int(position), len(stages) - 1))
            old_index = stages.index(current)
            if index != old_index:
                stages.remove(current)
                stages.insert(index, current)
                _renumber(access.org, stages)
                changes["position"] = [old_index, index]
        if changes:
            audit_record(
                org=access.org, actor=access.user, action="stage.update", target=current, changes=changes
            )
    return current


def stage_delete(*, access: Access, stage: Stage) -> None:
    """Only a stage that holds nothing (no agents, ever) can be deleted."""
    _require_admin(access)
    with transaction.atomic():
        stages = list(Stage.objects.for_org(access.org).select_for_update().order_by("position"))
        if len(stages) <= 1:
            raise Conflict("An organization needs at least one stage.")
        audit_record(
            org=access.org,
            actor=access.user,
            action="stage.delete",
            target=stage,
            changes={"slug": stage.slug, "name": stage.name},
        )
        try:
            with transaction.atomic():
                Stage.objects.for_org(access.org).filter(pk=stage.pk).delete()
        except ProtectedError as exc:
            raise Conflict("Only stages with no agents can be deleted.") from exc
        _renumber(access.org, [s for s in stages if s.pk != stage.pk])
