"""The rollout judge: four outcomes, evidence, and no false-fail inflation under repeated looks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rollout.stats import (
    SPENDING,
    Direction,
    MetricKind,
    MetricSamples,
    Outcome,
    alpha_spent,
    compare_continuous,
    compare_rates,
    judge,
    look_alpha,
)

LOWER, HIGHER = Direction.LOWER_IS_BETTER, Direction.HIGHER_IS_BETTER
ALPHA, LOOKS, PER_LOOK = 0.05, 5, 200


def arm(rng, n, *, latency_scale=1.0, error_rate=0.05, mos_shift=0.0):
    return {
        "latency_ms": rng.lognormal(np.log(300 * latency_scale), 0.5, n),
        "errors": (rng.random(n) < error_rate).astype(int),
        "mos": np.clip(rng.normal(4.0 + mos_shift, 0.5, n), 1, 5).round(1),  # discrete: ties
    }


def metrics_from(candidate, stable, names=("latency_ms", "errors", "mos")):
    spec = {
        "latency_ms": (LOWER, MetricKind.CONTINUOUS),
        "errors": (LOWER, MetricKind.RATE),
        "mos": (HIGHER, MetricKind.CONTINUOUS),
    }
    return [MetricSamples(n, spec[n][0], candidate[n], stable[n], spec[n][1]) for n in names]


def experiment(rng, looks=LOOKS, **candidate_effects):
    """One rollout's verdicts at each look, over cumulative samples."""
    candidate = arm(rng, looks * PER_LOOK, **candidate_effects)
    stable = arm(rng, looks * PER_LOOK)
    verdicts = []
    for look in range(1, looks + 1):
        n = look * PER_LOOK
        seen_c = {k: v[:n] for k, v in candidate.items()}
        seen_s = {k: v[:n] for k, v in stable.items()}
        verdicts.append(judge(metrics_from(seen_c, seen_s), look, looks, min_samples=50))
    return verdicts


@pytest.fixture(scope="module")
def aa_runs():
    rng = np.random.default_rng(20240611)
    return [experiment(rng) for _ in range(200)]


# --- alpha spending ----------------------------------------------------------------------------


@pytest.mark.parametrize("spending", sorted(SPENDING))
def test_spending_adds_up_to_alpha(spending):
    per_look = [look_alpha(k, LOOKS, ALPHA, spending) for k in range(1, LOOKS + 1)]
    assert all(a > 0 for a in per_look)
    assert sum(per_look) == pytest.approx(ALPHA)
    spent = [alpha_spent(k, LOOKS, ALPHA, spending) for k in range(1, LOOKS + 1)]
    assert spent == sorted(spent) and spent[-1] == ALPHA


def test_obrien_fleming_saves_alpha_for_later_looks():
    per_look = [look_alpha(k, LOOKS, ALPHA) for k in range(1, LOOKS + 1)]
    assert per_look == sorted(per_look)
    assert per_look[0] < 1e-4 < 0.02 < per_look[-1]
    assert look_alpha(3, 5, ALPHA, "bonferroni") == pytest.approx(ALPHA / 5)


@pytest.mark.parametrize(("look", "max_looks"), [(0, 5), (6, 5), (1, 0)])
def test_looks_out_of_range_are_rejected(look, max_looks):
    with pytest.raises(ValueError):
        judge([], look, max_looks, min_samples=10)


# --- A/A: no false-fail inflation --------------------------------------------------------------


def test_candidate_equal_to_stable_passes(aa_runs):
    final = [run[-1] for run in aa_runs]
    assert sum(v.outcome == Outcome.PASS for v in final) / len(final) >= 0.9
    assert all(v.outcome in (Outcome.PASS, Outcome.FAIL) for run in aa_runs for v in run)


def test_repeated_looks_do_not_inflate_the_false_fail_rate(aa_runs):
    failed = [any(v.outcome == Outcome.FAIL for v in run) for run in aa_runs]
    rate = sum(failed) / len(failed)
    # The union bound keeps it at most alpha in expectation; 200 runs carry +-3 % of noise.
    assert rate <= ALPHA + 0.03, rate


def test_a_naive_uncorrected_judge_would_inflate_it(aa_runs):
    """The same p-values, each compared against the full alpha at every look."""

    def naive_rate(names):
        return sum(
            any(m.p_value <= ALPHA for v in run for m in v.metrics if m.name in names)
            for run in aa_runs
        ) / len(aa_runs)

    corrected = sum(any(v.outcome == Outcome.FAIL for v in run) for run in aa_runs) / len(aa_runs)
    # Five looks at the full alpha on one metric: about 0.12-0.14 in theory.
    assert naive_rate({"latency_ms"}) >= 0.08
    assert naive_rate({"latency_ms", "errors", "mos"}) >= 0.2
    assert naive_rate({"latency_ms", "errors", "mos"}) >= 3 * max(corrected, 0.02)


# --- clearly worse candidates fail ------------------------------------------------------------


@pytest.mark.parametrize(
    ("effects", "metric"),
    [
        ({"latency_scale": 1.25}, "latency_ms"),
        ({"error_rate": 0.10}, "errors"),
        ({"mos_shift": -0.25}, "mos"),
    ],
)
def test_a_clearly_worse_candidate_fails(effects, metric):
    verdict = experiment(np.random.default_rng(7), **effects)[-1]
    assert verdict.outcome == Outcome.FAIL
    by_name = {m.name: m for m in verdict.metrics}
    assert by_name[metric].decision == Outcome.FAIL
    assert by_name[metric].p_value <= by_name[metric].alpha_look
    worse = (
        by_name[metric].effect > 0
        if by_name[metric].direction == LOWER
        else (by_name[metric].effect < 0)
    )
    assert worse
    others = [m for m in verdict.metrics if m.name != metric]
    assert all(m.decision == Outcome.PASS for m in others)


def test_a_glaring_regression_fails_at_the_first_look():
    rng = np.random.default_rng(3)
    verdicts = experiment(rng, latency_scale=2.0)
    assert verdicts[0].outcome == Outcome.FAIL


def test_a_better_candidate_does_not_fail_even_two_sided():
    rng = np.random.default_rng(5)
    candidate, stable = (
        arm(rng, 1000, latency_scale=0.7, error_rate=0.01, mos_shift=0.3),
        arm(rng, 1000),
    )
    for alternative in ("worse", "two-sided"):
        verdict = judge(
            metrics_from(candidate, stable), 5, 5, min_samples=50, alternative=alternative
        )
        assert verdict.outcome == Outcome.PASS, alternative
    two_sided = judge(metrics_from(candidate, stable), 5, 5, 50, alternative="two-sided")
    assert all(m.p_value < 1e-6 for m in two_sided.metrics)  # clearly different, yet a pass


# --- missing and scarce data -------------------------------------------------------------------


def test_too_few_samples_is_insufficient_data():
    rng = np.random.default_rng(1)
    verdict = judge(metrics_from(arm(rng, 30), arm(rng, 500)), 1, 5, min_samples=50)
    assert verdict.outcome == Outcome.INSUFFICIENT_DATA
    assert {m.decision for m in verdict.metrics} == {Outcome.INSUFFICIENT_DATA}
    assert verdict.metrics[0].n_candidate == 30 and verdict.metrics[0].n_stable == 500
    assert verdict.metrics[0].p_value is None


@pytest.mark.parametrize(
    ("candidate", "stable"), [(None, [1.0] * 100), ([1.0] * 100, None), ([], []), ([], [1.0] * 100)]
)
def test_no_samples_is_unavailable(candidate, stable):
    verdict = judge([MetricSamples("latency_ms", LOWER, candidate, stable)], 2, 5, min_samples=10)
    assert verdict.outcome == Outcome.UNAVAILABLE
    assert verdict.metrics[0].decision == Outcome.UNAVAILABLE
    assert "no samples" in verdict.metrics[0].detail


def test_non_finite_samples_are_dropped_and_counted():
    verdict = judge(
        [MetricSamples("latency_ms", LOWER, [float("nan")] * 20, [1.0, float("inf")] * 10)],
        1,
        5,
        min_samples=5,
    )
    assert verdict.outcome == Outcome.UNAVAILABLE
    assert verdict.metrics[0].n_invalid == 30


def test_no_metrics_at_all_is_unavailable():
    assert judge([], 1, 5, min_samples=10).outcome == Outcome.UNAVAILABLE


def test_outcome_priority_fail_then_unavailable_then_insufficient():
    rng = np.random.default_rng(2)
    bad, good = arm(rng, 1000, latency_scale=2.0), arm(rng, 1000)
    failing = MetricSamples("latency_ms", LOWER, bad["latency_ms"], good["latency_ms"])
    missing = MetricSamples("mos", HIGHER, None, good["mos"])
    scarce = MetricSamples.rate("errors", LOWER, candidate=(1, 10), stable=(50, 1000))
    passing = MetricSamples("rtf", LOWER, good["latency_ms"], good["latency_ms"])
    assert judge([failing, missing, scarce], 5, 5, 50).outcome == Outcome.FAIL
    assert judge([passing, missing, scarce], 5, 5, 50).outcome == Outcome.UNAVAILABLE
    assert judge([passing, scarce], 5, 5, 50).outcome == Outcome.INSUFFICIENT_DATA
    assert judge([passing], 5, 5, 50).outcome == Outcome.PASS


# --- evidence ----------------------------------------------------------------------------------


def test_evidence_fields_are_present_and_json_serialisable():
    rng = np.random.default_rng(4)
    verdict = judge(metrics_from(arm(rng, 800, latency_scale=1.1), arm(rng, 700)), 3, 5, 50)
    data = json.loads(json.dumps(verdict.to_dict(), allow_nan=False))
    assert data["outcome"] in {"pass", "fail", "insufficient_data", "unavailable"}
    assert (data["look"], data["max_looks"], data["alpha"]) == (3, 5, ALPHA)
    for m in data["metrics"]:
        for field in (
            "name",
            "direction",
            "effect",
            "ci_low",
            "ci_high",
            "n_candidate",
            "n_stable",
            "p_value",
            "alpha_spent",
            "alpha_look",
            "decision",
        ):
            assert m[field] is not None, field
        assert m["ci_low"] <= m["effect"] <= m["ci_high"]
        assert (m["n_candidate"], m["n_stable"]) == (800, 700)
        assert m["alpha_look"] == pytest.approx(look_alpha(3, 5, ALPHA) / 3)
        assert m["alpha_spent"] == pytest.approx(alpha_spent(3, 5, ALPHA) / 3)
    latency = next(m for m in data["metrics"] if m["name"] == "latency_ms")
    assert latency["effect_kind"] == "hodges_lehmann_shift" and latency["effect"] > 0
    errors = next(m for m in data["metrics"] if m["name"] == "errors")
    assert errors["test"] == "fisher_exact" and errors["effect_kind"] == "rate_difference"


def test_hodges_lehmann_shift_recovers_a_known_shift():
    rng = np.random.default_rng(6)
    stable = rng.normal(100, 10, 2000)
    result = compare_continuous(stable[:1000] + 7.0, stable[1000:], LOWER, 0.025)
    assert result.ci_level == pytest.approx(0.95)
    assert result.ci_low < 7.0 < result.ci_high
    assert result.effect == pytest.approx(7.0, abs=1.0)
    assert result.p_value < 1e-20


def test_moses_interval_covers_the_true_shift_at_its_level():
    rng = np.random.default_rng(8)
    covered = 0
    for _ in range(200):
        c, s = rng.exponential(1.0, 60) + 0.5, rng.exponential(1.0, 80)
        r = compare_continuous(c, s, LOWER, 0.05)  # one-sided 5 % -> 90 % interval
        covered += r.ci_low <= 0.5 <= r.ci_high
    assert 0.85 <= covered / 200 <= 0.96


def test_rate_comparison_newcombe_interval():
    c = np.r_[np.ones(30), np.zeros(970)]
    s = np.r_[np.ones(10), np.zeros(990)]
    r = compare_rates(c, s, LOWER, 0.025)
    assert r.effect == pytest.approx(0.02)
    assert 0 < r.ci_low < 0.02 < r.ci_high < 0.04  # Newcombe (1998) method 10: ~[0.007, 0.033]
    assert r.p_value < 0.01
    none = compare_rates(np.zeros(100), np.zeros(100), LOWER, 0.025)
    assert none.p_value == 1.0 and none.ci_low < 0 < none.ci_high


def test_all_ties_is_a_pass_not_a_crash():
    verdict = judge([MetricSamples("mos", HIGHER, [4.0] * 100, [4.0] * 120)], 5, 5, 50)
    assert verdict.outcome == Outcome.PASS
    assert verdict.metrics[0].p_value == 1.0 and verdict.metrics[0].effect == 0


def test_rate_samples_must_be_zero_or_one():
    with pytest.raises(ValueError):
        judge([MetricSamples("errors", LOWER, [0, 2] * 50, [0, 1] * 50, MetricKind.RATE)], 1, 5, 10)


def test_one_arms_intervals():
    from rollout.stats import mean_interval, quantile_interval, rate_interval

    assert rate_interval(0, 0) is None and quantile_interval([], 0.5) is None
    low, high = rate_interval(5, 100)
    assert 0.02 < low < 0.05 < high < 0.12
    values = np.arange(1.0, 101.0)
    low, high = quantile_interval(values, 0.5)
    assert low < 50.5 < high and high - low < 25
    assert quantile_interval([3.0, 4.0], 0.95) == (3.0, 4.0)  # too few: the range
    low, high = mean_interval(values)
    assert low < 50.5 < high
    assert mean_interval([2.0]) == (2.0, 2.0)
