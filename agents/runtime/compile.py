"""An agent's components turned into what an engine runs: compiled once, then cached.

The console compiles the working copy; live traffic compiles a saved version. A saved
version never changes, so its compilation is cached by (agent, version); the working copy
by the digest of its (uid, hash) pairs.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from ..models import Agent, AgentVersion, Component
from ..secrets import reveal
from ..versioning import contents_by_hash, current_entries
from .masking import NO_SECRETS, Masker
from .patterns import Pattern
from .patterns import compiled as compiled_pattern
from .text import BM25, Document, tokens


@dataclass
class Skill:
    uid: str
    name: str
    utterances: list[set[str]]
    patterns: list[Pattern]
    responses: list[str]
    slots: dict
    tool: str | None


@dataclass
class Tool:
    name: str
    description: str
    parameters: dict
    webhook_url: str | None = None
    response: object = None
    timeout: float = 5.0
    retries: int = 2
    headers: dict = field(default_factory=dict)


@dataclass
class CompiledAgent:
    agent_id: str
    version: int
    draft: bool
    settings: dict
    skills: list[Skill]
    knowledge: BM25
    knowledge_titles: dict[str, str]
    tools: dict[str, Tool]
    # name → (value, secret): a stage's own variables, secrets in the clear (never echoed).
    variables: dict[str, tuple[str, bool]]
    # Masks the secret values above wherever they come back (frames, tool results, turns).
    masker: Masker = NO_SECRETS


def compile_rows(agent_id: str, version: int, draft: bool, rows) -> CompiledAgent:
    """rows: (uid, kind, name, stored spec)."""
    settings: dict = {}
    skills, docs, tools, variables = [], [], {}, {}
    for uid, kind, name, stored in rows:
        spec = reveal(stored)
        if kind == "settings":
            settings = spec
        elif kind == "skill":
            skills.append(
                Skill(
                    uid=str(uid),
                    name=name,
                    utterances=[set(tokens(u)) for u in spec.get("utterances", [])],
                    # RE2, linear time; a stored pattern it refuses is skipped (and logged).
                    patterns=[c for c in map(compiled_pattern, spec.get("patterns", [])) if c],
                    responses=spec.get("responses", []),
                    slots=spec.get("slots", {}),
                    tool=spec.get("tool"),
                )
            )
        elif kind == "knowledge":
            docs.append(Document(key=str(uid), title=spec.get("title", name), text=spec.get("body", "")))
        elif kind == "tool":
            tools[name] = Tool(
                name=name,
                description=spec.get("description", ""),
                parameters=spec.get("parameters") or {"type": "object", "properties": {}},
                webhook_url=spec.get("webhook_url"),
                response=spec.get("response"),
                timeout=float(spec.get("timeout_seconds", 5.0)),
                retries=int(spec.get("retries", 2)),
                headers=spec.get("headers", {}),
            )
        elif kind == "variable":
            value = spec.get("value")
            variables[name] = ("" if value is None else str(value), bool(spec.get("secret")))
    skills.sort(key=lambda s: s.name)
    docs.sort(key=lambda d: d.key)
    return CompiledAgent(
        agent_id=str(agent_id),
        version=version,
        draft=draft,
        settings=settings,
        skills=skills,
        knowledge=BM25(docs),
        knowledge_titles={d.key: d.title for d in docs},
        tools=tools,
        variables=variables,
        masker=Masker(value for value, secret in variables.values() if secret),
    )


class _Cache:
    """A small, thread-safe LRU of compiled agents (they are read-only once built)."""

    def __init__(self, size: int = 64):
        self.size, self.items, self.lock = size, OrderedDict(), threading.Lock()

    def get_or_build(self, key, build):
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        value = build()
        with self.lock:
            self.items[key] = value
            while len(self.items) > self.size:
                self.items.popitem(last=False)
        return value

    def clear(self) -> None:
        with self.lock:
            self.items.clear()


CACHE = _Cache()


def compile_working_copy(agent: Agent) -> CompiledAgent:
    """The console's agent: the working copy, unsaved changes included."""
    entries = current_entries(agent)
    digest = hashlib.sha256(json.dumps(entries).encode()).hexdigest()

    def build():
        rows = (
            Component.objects.for_org(agent.org_id)
            .filter(agent=agent)
            .values_list("uid", "kind", "name", "spec")
        )
        return compile_rows(agent.pk, agent.version, agent.has_unsaved_changes, list(rows))

    compiled = CACHE.get_or_build(("working", str(agent.pk), digest), build)
    compiled.draft = agent.has_unsaved_changes
    return compiled


def compile_version(version: AgentVersion) -> CompiledAgent:
    """Live traffic's agent: a saved version, which never changes."""
    return CACHE.get_or_build(
        ("version", str(version.agent_id), version.number), lambda: _from_version(version)
    )


def compile_saved(org_id, agent_id, number: int) -> CompiledAgent:
    """A saved version by number: once compiled, served from the cache without a query."""

    def build():
        version = (
            AgentVersion.objects.for_org(org_id)
            .filter(agent_id=agent_id, number=number)
            .select_related("manifest")
            .get()
        )
        return _from_version(version)

    return CACHE.get_or_build(("version", str(agent_id), number), build)


def _from_version(version: AgentVersion) -> CompiledAgent:
    entries = version.manifest.entries
    contents = contents_by_hash(version.org_id, [h for _, h in entries])
    rows = [(uid, contents[h].kind, contents[h].name, contents[h].spec) for uid, h in entries]
    return compile_rows(version.agent_id, version.number, False, rows)
