"""Red team: attacks per risk category, disguised by strategies, judged by canaries."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

CATEGORIES = (
    "prompt_injection",
    "system_prompt_leak",
    "secret_leak",
    "off_policy",
    "violence",
    "sexual",
    "self_harm",
    "hate",
)


@cache
def attacks() -> dict[str, list[str]]:
    """The attack prompts per category, from attacks.json (read once)."""
    data = json.loads((Path(__file__).parent / "attacks.json").read_text())
    return {category: list(data.get(category, [])) for category in CATEGORIES}
