"""Release analysis: is the candidate worse than the stable version by more than the
release's thresholds, over the current step's window?

Four metrics, each with a test from scipy.stats and the threshold as the effect that
matters (the null hypothesis is shifted by it, as in a non-inferiority trial):

- error rate (conversations with an error / conversations): a two-proportion z-test
  with the Agresti-Caffo adjustment (one success and one failure added to each arm, so
  that 0 errors out of n still has a spread), on the absolute difference; Fisher's
  exact test is reported beside it.
- p95 latency (agent turns' total latency): Mann-Whitney U of the candidate's latencies
  against the stable's scaled by 1 + max_latency_increase (and at least 50 ms more,
  below which a relative change is noise), as Kayenta does.
- average rating (1-5, where given): Welch's t-test against the stable's ratings scaled
  by 1 - max_rating_drop; judged only once each arm has `min_ratings` ratings.
- safety violations: the candidate's live answers that leak its instructions or a
  secret (the red team's canary detection) or trip the safety detectors; more than
  `max_safety_violations` fails at once, no statistics needed.

Each metric is `fail` when the candidate is worse by more than the threshold at
p < ALPHA, `pass` when it is better than that bound at p < ALPHA, `inconclusive`
otherwise. The verdict: any fail → fail; fewer than `min_samples` conversations in
either arm → inconclusive (missing data is never a pass); all judged metrics pass →
pass; otherwise inconclusive.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from scipy import stats

ALPHA = 0.05
LATENCY_FLOOR_MS = 50
MAX_SAMPLES = 5000  # latencies per arm read for one tick: the newest ones
MAX_SCANNED = 500  # candidate answers scanned for safety per tick: the newest ones


class MeasurementError(Exception):
    """The data could not be measured (a broken test statistic, unreadable rows)."""


@dataclass
class Arm:
    conversations: int = 0
    errors: int = 0
    latencies: list[int] = field(default_factory=list)
    ratings: list[int] = field(default_factory=list)


def _finite(value: float) -> float:
    if value is None or not math.isfinite(value):
        raise MeasurementError(f"the statistic is not a number ({value})")
    return float(value)


def _p(value: float) -> float:
    """A p-value kept to three significant digits (a tiny one stays readable, not 0.0)."""
    return float(f"{value:.3g}")


def _decide(p_worse: float, p_better: float) -> str:
    if p_worse < ALPHA:
        return "fail"
    if p_better < ALPHA:
        return "pass"
    return "inconclusive"


def error_rate(stable: Arm, candidate: Arm, max_increase: float) -> dict:
    ns, nc = stable.conversations, candidate.conversations
    ps = (stable.errors + 1) / (ns + 2)
    pc = (candidate.errors + 1) / (nc + 2)
    se = math.sqrt(ps * (1 - ps) / (ns + 2) + pc * (1 - pc) / (nc + 2))
    diff = pc - ps
    p_worse = _finite(stats.norm.sf((diff - max_increase) / se))
    p_better = _finite(stats.norm.sf((max_increase - diff) / se))
    fisher = stats.fisher_exact(
        [[candidate.errors, nc - candidate.errors], [stable.errors, ns - stable.errors]],
        alternative="greater",
    ).pvalue
    return {
        "result": _decide(p_worse, p_better),
        "stable": round(stable.errors / ns, 4) if ns else None,
        "candidate": round(candidate.errors / nc, 4) if nc else None,
        "threshold": max_increase,
        "test": "two-proportion z-test (Agresti-Caffo), null shifted by the threshold",
        "p_value": _p(p_worse),
        "p_value_within": _p(p_better),
        "fisher_p_value": _p(_finite(fisher)),
    }


def p95(values: list[int]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)])


def latency(stable: Arm, candidate: Arm, max_increase: float) -> dict:
    base = {
        "stable_p95_ms": p95(stable.latencies),
        "candidate_p95_ms": p95(candidate.latencies),
        "threshold": max_increase,
        "test": "Mann-Whitney U against the stable latencies scaled by the threshold",
    }
    if not stable.latencies or not candidate.latencies:
        return {**base, "result": "no_data", "p_value": None}
    bound = [max(v * (1 + max_increase), v + LATENCY_FLOOR_MS) for v in stable.latencies]
    worse = stats.mannwhitneyu(candidate.latencies, bound, alternative="greater").pvalue
    better = stats.mannwhitneyu(candidate.latencies, bound, alternative="less").pvalue
    p_worse, p_better = _finite(worse), _finite(better)
    return {**base, "result": _decide(p_worse, p_better), "p_value": _p(p_worse)}


def rating(stable: Arm, candidate: Arm, max_drop: float, min_ratings: int) -> dict:
    mean = lambda xs: round(sum(xs) / len(xs), 3) if xs else None  # noqa: E731
    base = {
        "stable": mean(stable.ratings),
        "candidate": mean(candidate.ratings),
        "ratings": [len(stable.ratings), len(candidate.ratings)],
        "threshold": max_drop,
        "test": "Welch's t-test against the stable ratings scaled by the threshold",
    }
    if len(stable.ratings) < max(min_ratings, 2) or len(candidate.ratings) < max(min_ratings, 2):
        return {**base, "result": "no_data", "p_value": None}
    bound = [r * (1 - max_drop) for r in stable.ratings]
    if len(set(bound)) == 1 and len(set(candidate.ratings)) == 1:
        # No spread on either side: the means are the whole story.
        verdict = "fail" if candidate.ratings[0] < bound[0] else "pass"
        return {**base, "result": verdict, "p_value": 0.0 if verdict == "fail" else 1.0}
    worse = stats.ttest_ind(candidate.ratings, bound, equal_var=False, alternative="less").pvalue
    better = stats.ttest_ind(candidate.ratings, bound, equal_var=False, alternative="greater").pvalue
    p_worse, p_better = _finite(worse), _finite(better)
    return {**base, "result": _decide(p_worse, p_better), "p_value": _p(p_worse)}


def safety(violations: int, scanned: int, maximum: int, examples: list[str]) -> dict:
    return {
        "result": "fail" if violations > maximum else "pass",
        "candidate": violations,
        "scanned": scanned,
        "threshold": maximum,
        "test": "count of leaked instructions or secrets and safety detector hits",
        "p_value": None,
        "examples": examples[:3],
    }


def verdict(stable: Arm, candidate: Arm, violations: tuple[int, int, list[str]], config: dict) -> dict:
    """The verdict and its numbers: {"verdict","reason","metrics"}."""
    metrics = {
        "conversations": {"stable": stable.conversations, "candidate": candidate.conversations},
        "safety": safety(*violations[:2], config["max_safety_violations"], violations[2]),
    }
    enough = min(stable.conversations, candidate.conversations) >= config["min_samples"]
    if enough:
        metrics["error_rate"] = error_rate(stable, candidate, config["max_error_rate_increase"])
        metrics["latency_p95"] = latency(stable, candidate, config["max_latency_increase"])
        metrics["rating"] = rating(stable, candidate, config["max_rating_drop"], config["min_ratings"])
    failed = [name for name, m in metrics.items() if isinstance(m, dict) and m.get("result") == "fail"]
    if failed:
        return {
            "verdict": "fail",
            "reason": f"Worse than the thresholds: {', '.join(failed)}.",
            "metrics": metrics,
        }
    if not enough:
        reason = (
            f"Not enough data: {stable.conversations} stable and {candidate.conversations} candidate "
            f"conversations, {config['min_samples']} needed in each."
        )
        return {"verdict": "inconclusive", "reason": reason, "metrics": metrics}
    judged = {k: m["result"] for k, m in metrics.items() if isinstance(m, dict) and "result" in m}
    if metrics["latency_p95"]["result"] == "no_data":
        return {"verdict": "inconclusive", "reason": "No latencies were measured.", "metrics": metrics}
    undecided = [k for k, r in judged.items() if r == "inconclusive"]
    if undecided:
        return {
            "verdict": "inconclusive",
            "reason": f"Not yet significant: {', '.join(undecided)}.",
            "metrics": metrics,
        }
    return {"verdict": "pass", "reason": "Within every threshold.", "metrics": metrics}
