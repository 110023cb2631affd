"""Judging a candidate model version against stable, without cheating under repeated looks.

Pure Python (numpy and scipy), no Django, so it can be tested alone.

A progressive rollout looks at its metrics several times (say once per ramp step) and stops at
the first look that shows harm. Testing every look at the full alpha inflates the false-fail
rate: five looks at 5 % each fail a candidate identical to stable about 13 % of the time. So:

Alpha spending
--------------
A spending function ``f`` with ``f(0) = 0`` and ``f(1) = alpha`` is fixed before the first look
(``max_looks``). Look ``k`` of ``K`` may spend ``f(k/K) - f((k-1)/K)``, and tests every metric
at that nominal level divided by the number of metrics (Bonferroni across metrics). By the union
bound, the chance that any look fails any metric of a candidate that is no worse than stable is
at most ``alpha``, whatever the correlation between looks and metrics (so the bound is
conservative; the measured A/A rate is in the tests). Functions (`SPENDING`):

- ``obrien_fleming`` (default), Lan-DeMets: ``2 - 2 * Phi(z_{1-alpha/2} / sqrt(t))``. Early
  looks spend almost nothing, so only a glaring regression stops the rollout early, and the last
  look keeps most of the alpha.
- ``pocock``: ``alpha * ln(1 + (e - 1) * t)``, closer to even spending.
- ``bonferroni``: ``alpha * t``, i.e. ``alpha / max_looks`` at every look.

Rules for callers: fix ``max_looks``, the spending function and the metric set before the first
look; every call to `judge` uses up its look number, whatever the verdict (call the next one with
``look + 1``, never the same look twice); looks should be roughly evenly spaced in samples.

Tests
-----
- Continuous metrics (latency, real-time factor, MOS): Mann-Whitney U
  (`scipy.stats.mannwhitneyu`, tie-corrected normal approximation for larger samples). The effect
  is the Hodges-Lehmann shift (the median of all candidate - stable differences), with the
  distribution-free Moses confidence interval from the order statistics of those differences.
  Both are found exactly by bisection over counts, in O(n log n) per step, without forming the
  n * m differences.
- Rate metrics (error rate, timeout rate; samples are 0/1 per request): Fisher's exact test,
  which holds its level even for rare errors; the effect is the rate difference with a Newcombe
  (hybrid Wilson score) confidence interval.

By default the test is one-sided, "candidate worse" (``alternative="worse"``); with
``"two-sided"`` the p-value is two-sided and a metric fails only when the effect is also in the
worse direction. Confidence intervals are repeated confidence intervals at the look's nominal
level (``1 - 2 * alpha_look`` two-sided for the one-sided test, so the worse-side bound is the
one the test uses; ``1 - alpha_look`` for the two-sided test): wide early, honest throughout.

Verdict
-------
Exactly four outcomes (`Outcome`). Per metric: ``unavailable`` when either arm is None or has no
(finite) samples: the metrics pipeline is broken, hold and alert; ``insufficient_data`` when an
arm has fewer than ``min_samples``; else ``fail`` when ``p <= alpha_look`` in the worse direction,
else ``pass``. Overall: any ``fail`` > any ``unavailable`` > any ``insufficient_data`` > ``pass``
(a clear failure is acted on even if another metric is missing). ``pass`` means "no significant
harm at this look", not proof of equivalence. No metrics at all is ``unavailable``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any, Literal

import numpy as np
from scipy import stats as sps

__all__ = [
    "SPENDING",
    "Comparison",
    "Direction",
    "MetricEvidence",
    "MetricKind",
    "MetricSamples",
    "Outcome",
    "Verdict",
    "alpha_spent",
    "compare_continuous",
    "compare_rates",
    "judge",
    "look_alpha",
    "mean_interval",
    "quantile_interval",
    "rate_interval",
]

Alternative = Literal["worse", "two-sided"]


class Outcome(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    INSUFFICIENT_DATA = "insufficient_data"
    UNAVAILABLE = "unavailable"


class Direction(StrEnum):
    LOWER_IS_BETTER = "lower_is_better"  # latency, error rate
    HIGHER_IS_BETTER = "higher_is_better"  # MOS, success rate


class MetricKind(StrEnum):
    CONTINUOUS = "continuous"
    RATE = "rate"


@dataclass(frozen=True)
class MetricSamples:
    """One metric's samples for both arms. ``None`` for an arm means it could not be read.

    For a ``rate`` metric each sample is 0 or 1 (one request: errored or not); `rate` builds one
    from counts.
    """

    name: str
    direction: Direction
    candidate: Sequence[float] | np.ndarray | None
    stable: Sequence[float] | np.ndarray | None
    kind: MetricKind = MetricKind.CONTINUOUS

    @classmethod
    def rate(
        cls,
        name: str,
        direction: Direction,
        *,
        candidate: tuple[int, int] | None,
        stable: tuple[int, int] | None,
    ) -> MetricSamples:
        """A rate metric from ``(events, total)`` counts per arm."""
        return cls(name, direction, _from_counts(candidate), _from_counts(stable), MetricKind.RATE)


@dataclass(frozen=True)
class Comparison:
    """A test of candidate against stable at one nominal level."""

    test: str
    effect_kind: str
    effect: float
    ci_low: float
    ci_high: float
    ci_level: float
    p_value: float
    candidate_value: float  # median, or rate
    stable_value: float


@dataclass(frozen=True)
class MetricEvidence:
    name: str
    kind: MetricKind
    direction: Direction
    decision: Outcome
    n_candidate: int
    n_stable: int
    alpha_look: float  # the nominal level this metric was tested at, at this look
    alpha_spent: float  # cumulative alpha spent for this metric through this look
    n_invalid: int = 0  # non-finite samples dropped
    test: str | None = None
    effect_kind: str | None = None
    effect: float | None = None  # candidate - stable, in the metric's unit
    ci_low: float | None = None
    ci_high: float | None = None
    ci_level: float | None = None
    p_value: float | None = None
    candidate_value: float | None = None
    stable_value: float | None = None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {k: _jsonable(v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    look: int
    max_looks: int
    alpha: float
    spending: str
    alternative: str
    min_samples: int
    metrics: tuple[MetricEvidence, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": str(self.outcome),
            "look": self.look,
            "max_looks": self.max_looks,
            "alpha": self.alpha,
            "spending": self.spending,
            "alternative": self.alternative,
            "min_samples": self.min_samples,
            "metrics": [m.to_dict() for m in self.metrics],
        }


def _obrien_fleming(t: float, alpha: float) -> float:
    if t <= 0:
        return 0.0
    return float(2 - 2 * sps.norm.cdf(sps.norm.ppf(1 - alpha / 2) / math.sqrt(t)))


def _pocock(t: float, alpha: float) -> float:
    return alpha * math.log(1 + (math.e - 1) * t)


def _bonferroni(t: float, alpha: float) -> float:
    return alpha * t


SPENDING = {"obrien_fleming": _obrien_fleming, "pocock": _pocock, "bonferroni": _bonferroni}


def alpha_spent(look: int, max_looks: int, alpha: float, spending: str = "obrien_fleming") -> float:
    """Cumulative alpha spent through ``look`` of ``max_looks`` (``alpha`` at the last look)."""
    _check_look(look, max_looks, alpha)
    if look == max_looks:
        return alpha  # exact, whatever the rounding of the spending function
    return min(alpha, _spending(spending)(look / max_looks, alpha))


def look_alpha(look: int, max_looks: int, alpha: float, spending: str = "obrien_fleming") -> float:
    """The nominal level look ``look`` may test at: the alpha spent since the previous look."""
    if look < 1:
        raise ValueError(f"looks are numbered from 1, got {look}")
    previous = alpha_spent(look - 1, max_looks, alpha, spending) if look > 1 else 0.0
    return max(0.0, alpha_spent(look, max_looks, alpha, spending) - previous)


def compare_continuous(
    candidate: np.ndarray,
    stable: np.ndarray,
    direction: Direction,
    level: float,
    alternative: Alternative = "worse",
) -> Comparison:
    """Mann-Whitney U of candidate vs stable at nominal ``level``, with the Hodges-Lehmann shift
    and its Moses confidence interval (see the module docstring)."""
    c = np.sort(np.asarray(candidate, dtype=float))
    s = np.sort(np.asarray(stable, dtype=float))
    p = sps.mannwhitneyu(c, s, alternative=_scipy_alternative(direction, alternative)).pvalue
    n, m = len(c), len(s)
    total = n * m
    # The Hodges-Lehmann shift: the median of the n*m pairwise differences.
    effect = (_kth_difference(c, s, (total + 1) // 2) + _kth_difference(c, s, total // 2 + 1)) / 2
    ci_level = _ci_level(level, alternative)
    z = float(sps.norm.ppf(1 - (1 - ci_level) / 2))
    k = math.floor(total / 2 - z * math.sqrt(n * m * (n + m + 1) / 12))
    k = max(1, k)  # beyond the data: report the range of observed differences
    return Comparison(
        test="mann_whitney_u",
        effect_kind="hodges_lehmann_shift",
        effect=effect,
        ci_low=_kth_difference(c, s, k),
        ci_high=_kth_difference(c, s, total - k + 1),
        ci_level=ci_level,
        p_value=_clean_p(p),
        candidate_value=float(np.median(c)),
        stable_value=float(np.median(s)),
    )


def compare_rates(
    candidate: np.ndarray,
    stable: np.ndarray,
    direction: Direction,
    level: float,
    alternative: Alternative = "worse",
) -> Comparison:
    """Fisher's exact test on the 2x2 table of events, with the rate difference and its
    Newcombe interval (see the module docstring). Samples are 0/1."""
    c_events, c_n = int(np.sum(candidate)), len(candidate)
    s_events, s_n = int(np.sum(stable)), len(stable)
    table = [[c_events, c_n - c_events], [s_events, s_n - s_events]]
    p = sps.fisher_exact(table, alternative=_scipy_alternative(direction, alternative)).pvalue
    ci_level = _ci_level(level, alternative)
    z = float(sps.norm.ppf(1 - (1 - ci_level) / 2))
    pc, ps = c_events / c_n, s_events / s_n
    lc, uc = _wilson(c_events, c_n, z)
    ls, us = _wilson(s_events, s_n, z)
    diff = pc - ps
    return Comparison(
        test="fisher_exact",
        effect_kind="rate_difference",
        effect=diff,
        ci_low=diff - math.sqrt((pc - lc) ** 2 + (us - ps) ** 2),
        ci_high=diff + math.sqrt((uc - pc) ** 2 + (ps - ls) ** 2),
        ci_level=ci_level,
        p_value=_clean_p(p),
        candidate_value=pc,
        stable_value=ps,
    )


def judge(
    metrics: list[MetricSamples],
    look: int,
    max_looks: int,
    min_samples: int,
    alpha: float = 0.05,
    *,
    spending: str = "obrien_fleming",
    alternative: Alternative = "worse",
) -> Verdict:
    """The verdict on the candidate at look ``look`` (1-based) of ``max_looks``."""
    if look < 1:
        raise ValueError(f"looks are numbered from 1, got {look}")
    _check_look(look, max_looks, alpha)
    _spending(spending)
    if alternative not in ("worse", "two-sided"):
        raise ValueError(f"alternative must be 'worse' or 'two-sided', got {alternative!r}")
    if min_samples < 2:
        raise ValueError("min_samples must be at least 2")
    names = [m.name for m in metrics]
    if len(set(names)) != len(names):
        raise ValueError(f"metric names must be unique: {names}")

    per_metric = max(1, len(metrics))
    level = look_alpha(look, max_looks, alpha, spending) / per_metric
    spent = alpha_spent(look, max_looks, alpha, spending) / per_metric
    evidence = tuple(_judge_metric(m, min_samples, level, spent, alternative) for m in metrics)
    decisions = {e.decision for e in evidence}
    if not evidence:
        outcome = Outcome.UNAVAILABLE
    else:
        for outcome in (Outcome.FAIL, Outcome.UNAVAILABLE, Outcome.INSUFFICIENT_DATA, Outcome.PASS):
            if outcome in decisions:
                break
    return Verdict(outcome, look, max_looks, alpha, spending, alternative, min_samples, evidence)


def _judge_metric(
    metric: MetricSamples, min_samples: int, level: float, spent: float, alternative: Alternative
) -> MetricEvidence:
    kind = MetricKind(metric.kind)
    direction = Direction(metric.direction)
    base = {"name": metric.name, "kind": kind, "direction": direction}
    base |= {"alpha_look": level, "alpha_spent": spent}
    if metric.candidate is None or metric.stable is None:
        missing = [arm for arm in ("candidate", "stable") if getattr(metric, arm) is None]
        return MetricEvidence(
            decision=Outcome.UNAVAILABLE,
            n_candidate=0 if metric.candidate is None else len(metric.candidate),
            n_stable=0 if metric.stable is None else len(metric.stable),
            detail=f"no samples from {' and '.join(missing)}",
            **base,
        )
    c, c_bad = _finite(metric.candidate, kind, metric.name)
    s, s_bad = _finite(metric.stable, kind, metric.name)
    counts = {"n_candidate": len(c), "n_stable": len(s), "n_invalid": c_bad + s_bad}
    if len(c) == 0 or len(s) == 0:
        empty = [arm for arm, x in (("candidate", c), ("stable", s)) if len(x) == 0]
        detail = f"no samples from {' and '.join(empty)}"
        return MetricEvidence(decision=Outcome.UNAVAILABLE, detail=detail, **counts, **base)
    if min(len(c), len(s)) < min_samples:
        detail = f"fewer than {min_samples} samples in an arm"
        return MetricEvidence(decision=Outcome.INSUFFICIENT_DATA, detail=detail, **counts, **base)

    compare = compare_rates if kind == MetricKind.RATE else compare_continuous
    result = compare(c, s, direction, level, alternative)
    worse = result.effect > 0 if direction == Direction.LOWER_IS_BETTER else result.effect < 0
    # One-sided: the p-value already points the worse way (its effect can be 0 on ties).
    fails = result.p_value <= level and (alternative == "worse" or worse)
    return MetricEvidence(
        decision=Outcome.FAIL if fails else Outcome.PASS,
        **counts,
        **base,
        **asdict(result),
    )


def _kth_difference(c: np.ndarray, s: np.ndarray, k: int) -> float:
    """The k-th smallest (1-based) of the differences c_i - s_j; c and s sorted.

    Bisection on the value, counting the pairs at or below it with one searchsorted, then a snap
    to the exact difference: the smallest c_i - s_j at or above the bracket's low end.
    """

    def count_le(d: float) -> int:
        # c_i - s_j <= d  <=>  s_j >= c_i - d
        return int(len(c) * len(s) - np.searchsorted(s, c - d, side="left").sum())

    lo, hi = float(c[0] - s[-1]), float(c[-1] - s[0])
    below = count_le(lo)
    if below >= k:
        return lo
    # Invariant: count_le(lo) < k <= count_le(hi). Done early once exactly k - 1 lie at or
    # below lo: the k-th is then the next difference up.
    while below < k - 1:
        mid = (lo + hi) / 2
        if mid <= lo or mid >= hi:
            break
        at_mid = count_le(mid)
        if at_mid >= k:
            hi = mid
        else:
            lo, below = mid, at_mid
    # The answer lies in (lo, hi]: the smallest actual difference greater than lo.
    idx = np.searchsorted(s, c - lo, side="left") - 1  # largest s_j < c_i - lo
    valid = idx >= 0
    return float(np.min(c[valid] - s[idx[valid]])) if np.any(valid) else hi


# One arm's intervals (what a chart of candidate beside stable shows) --------------------------
# Descriptive, at a fixed level: the guardrails' decisions use the comparisons above, whose
# intervals are on the difference and at each look's spent level.


def _z(level: float) -> float:
    if not 0 < level < 1:
        raise ValueError(f"level must be within (0, 1), got {level!r}")
    return float(sps.norm.ppf(1 - (1 - level) / 2))


def rate_interval(events: int, n: int, level: float = 0.95) -> tuple[float, float] | None:
    """Wilson score interval of a rate (``events`` of ``n``); None without samples."""
    if n <= 0:
        return None
    return _wilson(events, n, _z(level))


def quantile_interval(
    values: Sequence[float] | np.ndarray, q: float, level: float = 0.95
) -> tuple[float, float] | None:
    """Distribution-free interval of the ``q`` quantile from the order statistics (binomial
    ranks); the sample range when there are too few values for the level. None when empty."""
    x = np.sort(np.asarray(values, dtype=float).ravel())
    x = x[np.isfinite(x)]
    n = int(x.size)
    if n == 0:
        return None
    tail = (1 - level) / 2
    low = int(sps.binom.ppf(tail, n, q))  # rank (1-based) of the lower bound
    high = int(sps.binom.ppf(1 - tail, n, q)) + 1
    low, high = min(max(low, 1), n), min(max(high, 1), n)
    return float(x[low - 1]), float(x[high - 1])


def mean_interval(
    values: Sequence[float] | np.ndarray, level: float = 0.95
) -> tuple[float, float] | None:
    """Student's t interval of a mean; a point for one value, None when empty."""
    x = np.asarray(values, dtype=float).ravel()
    x = x[np.isfinite(x)]
    n = int(x.size)
    if n == 0:
        return None
    mean = float(np.mean(x))
    if n == 1:
        return mean, mean
    half = float(sps.t.ppf(1 - (1 - level) / 2, n - 1) * np.std(x, ddof=1) / math.sqrt(n))
    return mean - half, mean + half


def _wilson(events: int, n: int, z: float) -> tuple[float, float]:
    p = events / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def _scipy_alternative(direction: Direction, alternative: Alternative) -> str:
    if alternative == "two-sided":
        return "two-sided"
    # scipy tests the first sample (the candidate) against the second.
    return "greater" if direction == Direction.LOWER_IS_BETTER else "less"


def _ci_level(level: float, alternative: Alternative) -> float:
    return 1 - (2 * level if alternative == "worse" else level)


def _finite(
    samples: Sequence[float] | np.ndarray, kind: MetricKind, name: str
) -> tuple[np.ndarray, int]:
    x = np.asarray(samples, dtype=float).ravel()
    ok = np.isfinite(x)
    x = x[ok]
    if kind == MetricKind.RATE and not np.all((x == 0) | (x == 1)):
        raise ValueError(f"rate metric {name!r} needs 0/1 samples")
    return x, int(np.size(ok) - np.count_nonzero(ok))


def _from_counts(counts: tuple[int, int] | None) -> np.ndarray | None:
    if counts is None:
        return None
    events, total = counts
    if not 0 <= events <= total:
        raise ValueError(f"need 0 <= events <= total, got {counts}")
    x = np.zeros(total, dtype=np.int8)
    x[:events] = 1
    return x


def _clean_p(p: float) -> float:
    p = float(p)
    return 1.0 if math.isnan(p) else min(1.0, max(0.0, p))


def _spending(name: str):
    try:
        return SPENDING[name]
    except KeyError:
        raise ValueError(f"spending must be one of {sorted(SPENDING)}, got {name!r}") from None


def _check_look(look: int, max_looks: int, alpha: float) -> None:
    if max_looks < 1 or not 0 <= look <= max_looks:
        raise ValueError(f"need 1 <= look <= max_looks, got look={look}, max_looks={max_looks}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be within (0, 1), got {alpha!r}")


def _jsonable(value: Any) -> Any:
    if isinstance(value, StrEnum):
        return str(value)
    if isinstance(value, float | np.floating):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value
