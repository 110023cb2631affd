"""The ramp's rules: when a step takes a look (a `rollout.stats.judge` call), and what a look's
outcome does. Pure Python, no Django: the evaluator (`rollout.services.guardrails`) and the
ramp simulation in `bench/` run the same rules.

Looks
-----
- A **duration look** is taken once the step's minimum duration (times ``1 + extensions``) is
  over and both arms have their minimum requests and quality samples. With the minimums not
  met the step is extended (or held) *without* a look: counts are not effects, so skipping the
  test spends no alpha and peeks at nothing.
- An **early-harm look** is taken at most once per step, before the minimum duration, as soon
  as the request and quality minimums are met. It can only stop the rollout (fail, or hold
  when the metrics are unavailable); a pass waits for the duration, so a step never advances
  early.
- A held step takes no further looks: an operator decides (promote, pause and resume for a
  fresh window, or roll back).

So a step takes at most ``2 + max_extensions`` looks, and `max_looks` fixes the whole
rollout's budget before the first look, as alpha spending requires. A look past the budget is
never taken: the step holds with ``looks_exhausted``.

Outcomes of a look: pass -> advance; fail -> fail; insufficient_data -> extend while
extensions remain, then hold; unavailable -> hold (and alert). "No data" is neither good nor
bad, so it never advances and never fails.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "ACTIONS",
    "HOLD_INSUFFICIENT",
    "HOLD_LOOKS_EXHAUSTED",
    "HOLD_UNAVAILABLE",
    "SPENDING",
    "Decision",
    "StepState",
    "combine",
    "decide",
    "max_looks",
]

# Each step is judged on its own, fresh window, so every look matters about equally: Pocock
# spending gives each look a usable share of alpha. O'Brien-Fleming (for looks at growing,
# cumulative data) would leave the 1 % and 5 % steps almost no power to stop a bad candidate.
SPENDING = "pocock"

ACTIONS = ("wait", "advance", "fail", "extend", "hold")
HOLD_INSUFFICIENT = "insufficient_data"
HOLD_UNAVAILABLE = "unavailable"
HOLD_LOOKS_EXHAUSTED = "looks_exhausted"

_PRIORITY = ("fail", "unavailable", "insufficient_data", "pass")


@dataclass(frozen=True)
class StepState:
    """What the rules need to know about the current step."""

    elapsed_s: float
    min_duration_s: float
    candidate_requests: int
    stable_requests: int
    min_requests: int
    candidate_quality_samples: int = 0
    stable_quality_samples: int = 0
    min_quality_samples: int = 0
    extensions: int = 0
    max_extensions: int = 1
    early_look_taken: bool = False
    looks_left: int = 1
    # Already holding (the reason): no more automatic looks.
    hold_reason: str = ""
    # The metrics pipeline is broken (e.g. every quality sample failed to score).
    unavailable: bool = False

    @property
    def deadline_s(self) -> float:
        return self.min_duration_s * (1 + self.extensions)

    @property
    def minimums_met(self) -> bool:
        return (
            min(self.candidate_requests, self.stable_requests) >= self.min_requests
            and min(self.candidate_quality_samples, self.stable_quality_samples)
            >= self.min_quality_samples
        )


@dataclass(frozen=True)
class Decision:
    action: str  # one of ACTIONS
    hold_reason: str = ""
    # Take a look (call judge, using up a look), then call `decide` again with its outcomes.
    take_look: bool = False
    early: bool = False  # the look is an early-harm look
    reason: str = ""


def max_looks(steps: int | Iterable, max_extensions: int) -> int:
    """The rollout's look budget: per step one early-harm look plus one duration look per
    (extended) duration."""
    count = steps if isinstance(steps, int) else len(list(steps))
    return max(1, count * (2 + max_extensions))


def combine(outcomes: Iterable[str]) -> str:
    """One outcome for several verdicts (groups): any fail, else any unavailable, else any
    insufficient_data, else pass. Nothing at all is unavailable."""
    seen = {str(o) for o in outcomes}
    for outcome in _PRIORITY:
        if outcome in seen:
            return outcome
    return "unavailable"


def decide(state: StepState, verdict_outcomes: Iterable[str] | None = None) -> Decision:
    """What to do now. Without outcomes: whether to look (``take_look``) or what to do without
    one. With the outcomes of the look just taken: what they mean."""
    due = state.elapsed_s >= state.deadline_s
    early = not due and state.elapsed_s < state.min_duration_s
    if verdict_outcomes is not None:
        return _after_look(state, combine(verdict_outcomes), early=not due)

    if state.hold_reason:
        return Decision("wait", hold_reason=state.hold_reason, reason="holding")
    if not due:
        if early and not state.early_look_taken and state.minimums_met and state.looks_left > 0:
            return Decision("wait", take_look=True, early=True, reason="early-harm look")
        return Decision("wait", reason="step duration not over")
    if state.unavailable:
        return Decision("hold", HOLD_UNAVAILABLE, reason="metrics unavailable")
    if not state.minimums_met:
        return _not_enough(state, "minimum requests or quality samples not reached")
    if state.looks_left <= 0:
        return Decision("hold", HOLD_LOOKS_EXHAUSTED, reason="look budget used up")
    return Decision("wait", take_look=True, reason="step duration over")


def _after_look(state: StepState, outcome: str, *, early: bool) -> Decision:
    if outcome == "fail":
        return Decision("fail", reason="a guardrail failed")
    if outcome == "unavailable":
        return Decision("hold", HOLD_UNAVAILABLE, reason="metrics unavailable")
    if early:
        return Decision("wait", reason="early-harm look found no harm")
    if outcome == "pass":
        return Decision("advance", reason="no guardrail shows harm")
    return _not_enough(state, "not enough data to judge")


def _not_enough(state: StepState, why: str) -> Decision:
    if state.extensions < state.max_extensions:
        return Decision("extend", reason=why)
    return Decision("hold", HOLD_INSUFFICIENT, reason=f"{why}; no extensions left")
