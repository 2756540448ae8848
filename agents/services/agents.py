"""Creating, editing and archiving agents."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from accounts.models import Stage
from lifecycle.access import Access
from lifecycle.audit import audit_record
from lifecycle.errors import Conflict, Forbidden, Invalid

from ..components import SETTINGS
from ..models import Agent, Component, Lineage, VersionReason
from .components import component_update, prepare, require_change
from .versions import version_write


def first_stage(org) -> Stage:
    return Stage.objects.for_org(org).order_by("position").first()


def _lineage_for(org, name: str) -> Lineage:
    base = (slugify(name) or "agent")[:50].strip("-") or "agent"
    taken = set(Lineage.objects.for_org(org).filter(slug__startswith=base).values_list("slug", flat=True))
    slug, n = base, 1
    while slug in taken:
        n += 1
        slug = f"{base}-{n}"
    return Lineage.objects.create(org=org, slug=slug)


def new_first_stage_agent(access: Access, stage: Stage, name: str, description: str) -> Agent:
    """The agent row of a new lineage (created or imported). Call inside a transaction."""
    return Agent.objects.create(
        org=access.org,
        lineage=_lineage_for(access.org, name),
        stage=stage,
        owner=access.user,
        name=name,
        description=description,
    )


def agent_create(
    *, access: Access, name: str, description: str = "", settings: dict | None = None, changelog: str = ""
) -> Agent:
    """A new agent, always in the org's first stage, with version 1."""
    stage = first_stage(access.org)
    if not access.has_stage_role(stage, "editor"):
        raise Forbidden(f"Creating agents needs the editor role in {stage.name}.")
    name = (name or "").strip()
    if not name:
        raise Invalid(fields={"name": ["This field may not be blank."]})
    _, settings_spec, settings_hash = prepare(SETTINGS, SETTINGS, settings or {}, field="settings")
    try:
        with transaction.atomic():
            agent = new_first_stage_agent(access, stage, name, description)
            Component.objects.create(
                org=access.org,
                agent=agent,
                kind=SETTINGS,
                name=SETTINGS,
                spec=settings_spec,
                content_hash=settings_hash,
            )
            version_write(
                actor=access.user, agent=agent, changelog=changelog or "Created.", reason=VersionReason.CREATE
            )
            audit_record(
                org=access.org,
                actor=access.user,
                action="agent.create",
                target=agent,
                changes={"name": name, "stage": stage.slug, "lineage": agent.lineage.slug},
            )
    except IntegrityError as exc:  # two creations racing for one lineage slug
        raise Conflict("Another agent was created with this name at the same moment; try again.") from exc
    return agent


def agent_update(
    *,
    access: Access,
    agent: Agent,
    name: str | None = None,
    description: str | None = None,
    settings=None,
    guard=None,
) -> Agent:
    """Rename, describe or reconfigure an agent; `guard` makes it conditional (If-Match).

    The guard runs on the agent row locked inside the transaction, so two writes made
    from the same state cannot both pass the check.
    """
    require_change(access, agent)
    changes: dict = {}
    with transaction.atomic():
        locked = Agent.objects.for_org(agent.org_id).select_for_update().get(pk=agent.pk)
        if guard is not None:
            guard(locked)
        if name is not None and name.strip() and name.strip() != agent.name:
            changes["name"] = [agent.name, name.strip()]
            agent.name = name.strip()
        elif name is not None and not name.strip():
            raise Invalid(fields={"name": ["This field may not be blank."]})
        if description is not None and description != agent.description:
            changes["description"] = True
            agent.description = description
        if changes:
            agent.save(update_fields=["name", "description", "updated_at"])
        if settings is not None:
            component = Component.objects.for_org(agent.org_id).get(agent=agent, kind=SETTINGS)
            component_update(access=access, component=component, spec=settings, field="settings")
        if changes:
            audit_record(
                org=access.org, actor=access.user, action="agent.update", target=agent, changes=changes
            )
    return agent


def agent_archive(*, access: Access, agent: Agent) -> Agent:
    """DELETE archives: conversations, versions and metrics stay readable."""
    if not access.can("delete", agent):
        raise Forbidden("You cannot archive agents in this stage.")
    if agent.archived:
        return agent
    with transaction.atomic():
        agent.archived_at = timezone.now()
        agent.save(update_fields=["archived_at", "updated_at"])
        audit_record(org=access.org, actor=access.user, action="agent.archive", target=agent)
    return agent


def agent_unarchive(*, access: Access, agent: Agent) -> Agent:
    """Bring an archived agent back, unless its lineage has another active agent in that stage.

    The same permission as archiving (delete), so whoever could archive by mistake can undo it.
    """
    if not access.can("delete", agent):
        raise Forbidden("You cannot unarchive agents in this stage.")
    with transaction.atomic():
        # Lock the row so two unarchives (or an unarchive racing an archive) see one state.
        agent = Agent.objects.for_org(access.org).select_for_update().get(pk=agent.pk)
        if not agent.archived:
            return agent
        rival = (
            Agent.objects.for_org(access.org)
            .filter(lineage_id=agent.lineage_id, stage_id=agent.stage_id, archived_at__isnull=True)
            .exclude(pk=agent.pk)
            .first()
        )
        if rival is not None:
            raise Conflict(
                f"{rival.name} is the active agent of this lineage in {agent.stage.name}; "
                "archive it first to bring this one back."
            )
        agent.archived_at = None
        try:
            # A savepoint: a rival promoted in the same instant trips the unique constraint.
            with transaction.atomic():
                agent.save(update_fields=["archived_at", "updated_at"])
        except IntegrityError as exc:
            raise Conflict(
                f"Another agent of this lineage became active in {agent.stage.name}; archive it first."
            ) from exc
        audit_record(org=access.org, actor=access.user, action="agent.unarchive", target=agent)
    return agent
