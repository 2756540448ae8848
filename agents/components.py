"""Component kinds and what moves between stages: the single source of truth.

Promote, pull, export and diff all read POLICY below and nothing else. It is the table
from DESIGN.md §4:

    kind                 on promote            on pull
    settings             copied                pulled
    skill                copied                pulled
    knowledge            copied                pulled, selectable one by one
    tool                 copied                pulled
    variable             copied (first time)   never: the stage keeps its own
    channel              copied (first time)   never: the stage keeps its own
    persona              never                 never
    notification         never                 never
    live_agent_message   copied                only the four hand-over message types

Name and description are copied on promote (the first time) and never pulled;
conversations, test results, metrics and presence never move.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class OnPromote(StrEnum):
    COPY = "copy"
    FIRST_TIME = "first_time"  # copied when the clone is made; a pull never touches it
    NEVER = "never"


class OnPull(StrEnum):
    PULL = "pull"
    SELECTABLE = "selectable"  # pulled, and the user may deselect items one by one
    SOME = "some"  # pulled only for the spec types listed in Kind.pulled_types
    NEVER = "never"


# live_agent_message types that a pull carries over (from the product's source documents).
PULLED_LIVE_AGENT_MESSAGES = frozenset(
    {"switch_to_live_agent", "switch_to_agent", "working_hours", "callback"}
)


@dataclass(frozen=True)
class Kind:
    name: str
    on_promote: OnPromote
    on_pull: OnPull
    singleton: bool = False  # exactly one per agent (settings)
    # Every kind's names are unique in an agent (a DB constraint): reviewers, references
    # (tools by skills, variables) and imports tell components apart by name.
    unique_names: bool = True
    pulled_types: frozenset[str] = frozenset()

    def pulls(self, spec: dict) -> bool:
        """Does a pull carry a component of this kind with this spec?"""
        if self.on_pull == OnPull.SOME:
            return spec.get("type") in self.pulled_types
        return self.on_pull != OnPull.NEVER

    @property
    def promotes(self) -> bool:
        return self.on_promote != OnPromote.NEVER


POLICY: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind("settings", OnPromote.COPY, OnPull.PULL, singleton=True, unique_names=True),
        Kind("skill", OnPromote.COPY, OnPull.PULL),
        Kind("knowledge", OnPromote.COPY, OnPull.SELECTABLE),
        Kind("tool", OnPromote.COPY, OnPull.PULL, unique_names=True),
        Kind("variable", OnPromote.FIRST_TIME, OnPull.NEVER, unique_names=True),
        Kind("channel", OnPromote.FIRST_TIME, OnPull.NEVER),
        Kind("persona", OnPromote.NEVER, OnPull.NEVER),
        Kind("notification", OnPromote.NEVER, OnPull.NEVER),
        Kind("live_agent_message", OnPromote.COPY, OnPull.SOME, pulled_types=PULLED_LIVE_AGENT_MESSAGES),
    )
}

KIND_NAMES = tuple(POLICY)
KIND_CHOICES = [(name, name.replace("_", " ")) for name in KIND_NAMES]
UNIQUE_NAME_KINDS = frozenset(name for name, kind in POLICY.items() if kind.unique_names)
PROMOTED_KINDS = frozenset(name for name, kind in POLICY.items() if kind.promotes)
NEVER_PULLED_KINDS = frozenset(name for name, kind in POLICY.items() if kind.on_pull == OnPull.NEVER)
SETTINGS = "settings"
