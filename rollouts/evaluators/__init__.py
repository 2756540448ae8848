"""Evaluators: deterministic per-case scorers, offline safety detectors and the LLM judge.

Import from here (`from rollouts.evaluators import score_case, defect_rates, …`): the
modules behind it may move.
"""

from .judge import JudgeFailed, judge_ask, judge_case, judge_score
from .safety import CATEGORIES as SAFETY_CATEGORIES
from .safety import defect_rates, safety_scores
from .scorers import (
    groundedness,
    intent_resolution,
    relevance,
    score_case,
    similarity,
    tool_call_accuracy,
)

__all__ = [
    "SAFETY_CATEGORIES",
    "JudgeFailed",
    "defect_rates",
    "groundedness",
    "intent_resolution",
    "judge_ask",
    "judge_case",
    "judge_score",
    "relevance",
    "safety_scores",
    "score_case",
    "similarity",
    "tool_call_accuracy",
]
