"""The ramp's rules (pure): when to look and what a look's outcome does."""

from dataclasses import replace

import pytest

from rollout import ramp
from rollout.ramp import StepState, decide

MET = StepState(
    elapsed_s=100,
    min_duration_s=100,
    candidate_requests=10,
    stable_requests=10,
    min_requests=10,
    candidate_quality_samples=3,
    stable_quality_samples=3,
    min_quality_samples=3,
    max_extensions=1,
    looks_left=5,
)


def test_a_look_is_due_once_the_duration_is_over_and_minimums_met():
    decision = decide(MET)
    assert decision.take_look and not decision.early and decision.action == "wait"


@pytest.mark.parametrize(
    ("outcome", "action", "hold"),
    [
        ("pass", "advance", ""),
        ("fail", "fail", ""),
        ("insufficient_data", "extend", ""),
        ("unavailable", "hold", "unavailable"),
    ],
)
def test_four_outcomes(outcome, action, hold):
    decision = decide(MET, [outcome])
    assert (decision.action, decision.hold_reason, decision.take_look) == (action, hold, False)


def test_insufficient_data_extends_then_holds():
    assert decide(MET, ["insufficient_data"]).action == "extend"
    last = replace(MET, elapsed_s=200, extensions=1)
    assert decide(last, ["insufficient_data"]) == ramp.Decision(
        "hold", "insufficient_data", reason="not enough data to judge; no extensions left"
    )


def test_minimums_not_met_extend_then_hold_without_a_look():
    few = replace(MET, candidate_requests=3)
    assert decide(few) == ramp.Decision(
        "extend", reason="minimum requests or quality samples not reached"
    )
    few = replace(few, extensions=1, elapsed_s=200)
    decision = decide(few)
    assert (decision.action, decision.hold_reason, decision.take_look) == (
        "hold",
        "insufficient_data",
        False,
    )
    no_quality = replace(MET, stable_quality_samples=2)
    assert decide(no_quality).action == "extend"


def test_no_data_is_neither_good_nor_bad():
    nothing = replace(MET, candidate_requests=0, stable_requests=0)
    assert decide(nothing).action not in ("advance", "fail")
    assert decide(replace(MET, elapsed_s=200, extensions=1), []).action == "hold"


def test_an_extended_step_waits_for_its_longer_duration():
    assert decide(replace(MET, elapsed_s=150, extensions=1)).take_look is False
    assert decide(replace(MET, elapsed_s=200, extensions=1)).take_look is True


def test_early_harm_look_once_per_step_can_only_stop():
    early = replace(MET, elapsed_s=40)
    decision = decide(early)
    assert decision.take_look and decision.early
    assert decide(early, ["pass"]).action == "wait"  # never advances before the duration
    assert decide(early, ["insufficient_data"]).action == "wait"
    assert decide(early, ["fail"]).action == "fail"
    assert decide(early, ["unavailable"]).hold_reason == "unavailable"
    assert decide(replace(early, early_look_taken=True)).take_look is False
    assert decide(replace(early, candidate_requests=1)).take_look is False


def test_holding_takes_no_more_looks():
    held = replace(MET, elapsed_s=10_000, hold_reason="insufficient_data")
    assert decide(held) == ramp.Decision("wait", "insufficient_data", reason="holding")


def test_unavailable_metrics_hold_at_the_deadline():
    decision = decide(replace(MET, unavailable=True))
    assert (decision.action, decision.hold_reason) == ("hold", "unavailable")


def test_look_budget_is_never_exceeded():
    assert decide(replace(MET, looks_left=0)).hold_reason == "looks_exhausted"
    assert decide(replace(MET, looks_left=0, elapsed_s=10)).take_look is False


def test_max_looks_covers_every_step():
    assert ramp.max_looks([1, 5, 20, 50, 100], 1) == 15
    assert ramp.max_looks(2, 0) == 4


def test_a_simulated_ramp_never_exceeds_its_budget():
    steps, max_ext = [1, 5, 100], 2
    budget, looks, step, extensions, early_taken = ramp.max_looks(steps, max_ext), 0, 0, 0, False
    elapsed = 0
    while step < len(steps):
        elapsed += 10
        state = replace(
            MET,
            elapsed_s=elapsed,
            extensions=extensions,
            max_extensions=max_ext,
            early_look_taken=early_taken,
            looks_left=budget - looks,
            candidate_requests=elapsed // 10,  # minimums met from 100 s
        )
        decision = decide(state)
        if decision.take_look:
            looks += 1
            early_taken = True
            # the worst case: insufficient at every duration look
            decision = decide(state, ["pass" if decision.early else "insufficient_data"])
        assert decision.action != "fail"
        if decision.action == "extend":
            extensions += 1
        elif decision.action == "hold":
            step, extensions, early_taken, elapsed = step + 1, 0, False, 0
    assert looks <= budget


def test_combine():
    assert ramp.combine(["pass", "insufficient_data", "fail"]) == "fail"
    assert ramp.combine(["pass", "unavailable", "insufficient_data"]) == "unavailable"
    assert ramp.combine(["pass", "pass"]) == "pass"
    assert ramp.combine([]) == "unavailable"
