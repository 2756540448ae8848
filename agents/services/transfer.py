"""Export an agent as a portable document, and import one as a new agent.

Format (format_version 1):
    {"format_version": 1, "name", "description",
     "components": [{"uid", "kind", "name", "spec"}, ...]}
Uids are kept; ids and timestamps are not; secret values are left out (is_set: false).
"""

from __future__ import annotations

import uuid

from django.db import transaction

from lifecycle.access import Access
from lifecycle.audit import audit_record
from lifecycle.errors import Forbidden, Invalid

from ..components import KIND_NAMES, POLICY, SETTINGS
from ..models import Agent, Component, VersionReason
from ..secrets import mask
from .agents import first_stage, new_first_stage_agent
from .components import prepare
from .versions import version_write

FORMAT_VERSION = 1
MAX_COMPONENTS = 20_000


def agent_export(agent: Agent) -> dict:
    components = Component.objects.for_org(agent.org_id).filter(agent=agent)
    ordered = sorted(components, key=lambda c: (KIND_NAMES.index(c.kind), c.name, str(c.uid)))
    return {
        "format_version": FORMAT_VERSION,
        "name": agent.name,
        "description": agent.description,
        "components": [
            {"uid": str(c.uid), "kind": c.kind, "name": c.name, "spec": mask(c.kind, c.spec, export=True)}
            for c in ordered
        ],
    }


def _validated_components(document: dict) -> list[tuple[uuid.UUID, str, str, dict, str]]:
    raw = document.get("components", [])
    if not isinstance(raw, list):
        raise Invalid(fields={"components": ["Expected a list."]})
    if len(raw) > MAX_COMPONENTS:
        raise Invalid(fields={"components": [f"At most {MAX_COMPONENTS} components."]})
    errors: dict[str, list[str]] = {}
    seen_uids: set = set()
    seen_names: set = set()
    out = []
    for index, item in enumerate(raw):
        at = f"components.{index}"
        if not isinstance(item, dict):
            errors[at] = ["Expected an object."]
            continue
        unknown = set(item) - {"uid", "kind", "name", "spec"}
        for key in sorted(unknown):
            errors[f"{at}.{key}"] = ["Unknown field."]
        kind = item.get("kind")
        if kind not in POLICY:
            errors[f"{at}.kind"] = [f"Must be one of: {', '.join(KIND_NAMES)}."]
            continue
        try:
            uid = uuid.UUID(str(item.get("uid"))) if item.get("uid") is not None else uuid.uuid4()
        except ValueError:
            errors[f"{at}.uid"] = ["Must be a UUID."]
            continue
        if uid in seen_uids:
            errors[f"{at}.uid"] = ["Two components have this uid."]
            continue
        seen_uids.add(uid)
        spec = item.get("spec", {})
        if kind == "variable" and isinstance(spec, dict) and spec.get("secret"):
            spec = {**spec, "value": None}  # exports carry no secret values
        try:
            name, stored, digest = prepare(kind, item.get("name", ""), spec)
        except Invalid as exc:
            for path, messages in exc.fields.items():
                errors[f"{at}.{path}"] = messages
            continue
        if POLICY[kind].unique_names:
            if (kind, name) in seen_names:
                errors[f"{at}.name"] = [f"Two {kind} components are named '{name}'."]
                continue
            seen_names.add((kind, name))
        out.append((uid, kind, name, stored, digest))
    tools = {name for _, kind, name, _, _ in out if kind == "tool"}
    for index, (_, kind, _, stored, _) in enumerate(out):
        if kind == "skill" and stored.get("tool") and stored["tool"] not in tools:
            errors[f"components.{index}.spec.tool"] = [f"No tool named '{stored['tool']}' in the document."]
    if sum(1 for _, kind, *_ in out if kind == SETTINGS) > 1:
        errors["components"] = ["At most one settings component."]
    if errors:
        raise Invalid("The document is not a valid agent export.", fields=errors)
    return out


def agent_import(*, access: Access, document) -> Agent:
    """A new agent in the first stage from an export. All of it, or nothing."""
    stage = first_stage(access.org)
    if not access.has_stage_role(stage, "editor"):
        raise Forbidden(f"Importing agents needs the editor role in {stage.name}.")
    if not isinstance(document, dict):
        raise Invalid(fields={"": ["Expected an export document (an object)."]})
    if document.get("format_version") != FORMAT_VERSION:
        raise Invalid(fields={"format_version": [f"Only format_version {FORMAT_VERSION} is understood."]})
    name = document.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 120:
        raise Invalid(fields={"name": ["A name of 1 to 120 characters is required."]})
    description = document.get("description", "")
    if not isinstance(description, str) or len(description) > 2000:
        raise Invalid(fields={"description": ["At most 2000 characters."]})
    components = _validated_components(document)
    if not any(kind == SETTINGS for _, kind, *_ in components):
        _, stored, digest = prepare(SETTINGS, SETTINGS, {})
        components.append((uuid.uuid4(), SETTINGS, SETTINGS, stored, digest))
    with transaction.atomic():
        agent = new_first_stage_agent(access, stage, name.strip(), description)
        Component.objects.bulk_create(
            Component(
                org=access.org, agent=agent, uid=uid, kind=kind, name=cname, spec=stored, content_hash=digest
            )
            for uid, kind, cname, stored, digest in components
        )
        version_write(actor=access.user, agent=agent, changelog="Imported.", reason=VersionReason.IMPORT)
        audit_record(
            org=access.org,
            actor=access.user,
            action="agent.import",
            target=agent,
            changes={"name": agent.name, "components": len(components)},
        )
    return agent
