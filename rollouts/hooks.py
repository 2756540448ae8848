"""Where a stage's rules plug into promotion: freeze windows, gates and approvals.

Promotion asks these, in the order API.md gives, after its own checks:
    1. freeze windows   → raise lifecycle.errors.Frozen      (423, details.window)
    2. gates            → raise lifecycle.errors.GateFailed  (409, details.checks)
    3. approval rules   → return True to start the operation as `awaiting_approval`
The gates work registers its checks here; promotion itself knows nothing of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class PromotionRequest:
    access: object
    agent: object  # the source agent
    target_stage: object


FREEZE_CHECKS: list[Callable[[PromotionRequest], None]] = []
GATE_CHECKS: list[Callable[[PromotionRequest], None]] = []
APPROVAL_RULES: list[Callable[[PromotionRequest], bool]] = []


def check_freeze(request: PromotionRequest) -> None:
    for check in FREEZE_CHECKS:
        check(request)


def check_gates(request: PromotionRequest) -> None:
    for check in GATE_CHECKS:
        check(request)


def approval_required(request: PromotionRequest) -> bool:
    return any(rule(request) for rule in APPROVAL_RULES)
