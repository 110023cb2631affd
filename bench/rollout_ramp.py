"""A simulated progressive rollout over synthetic traffic: the evaluator's own rules
(`rollout.ramp`) and test (`rollout.stats.judge`), with simulated requests instead of a
database.

One good and one bad candidate are ramped against stable (1 -> 5 -> 20 -> 50 -> 100 %), with
an evaluation every 10 simulated minutes. The timeline of percentages, the per-look effects
with their confidence intervals, and the decisions are plotted to docs/images/rollout-ramp.png.
Then many repeated rollouts measure the false-fail rate of a candidate identical to stable
(A/A) and how often, and how fast, the bad candidate is caught.

    PYTHONPATH=$PWD:$PWD/platform .venv/bin/python bench/rollout_ramp.py \
        --plot docs/images/rollout-ramp.png --json /tmp/rollout_ramp.json
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field

import numpy as np

from rollout import ramp
from rollout.stats import Direction, MetricSamples, judge

TICK_S = 600  # the evaluator's interval in the simulation
STEPS = [1.0, 5.0, 20.0, 50.0, 100.0]


@dataclass(frozen=True)
class Profile:
    """How one version behaves per request (synthetic, shaped on docs/benchmarks.md)."""

    name: str
    error_rate: float = 0.003
    timeout_rate: float = 0.001
    latency_ms_per_char: float = 6.5  # median; lognormal sigma 0.35
    rtf: float = 0.09
    mos: float = 4.03  # DNSMOS per sample, sd 0.2
    wer_word_error: float = 0.02  # per-word error probability; ~12 words a sample


STABLE = Profile("stable")
GOOD = Profile("good candidate", latency_ms_per_char=6.2, rtf=0.086)
# Subtly worse speech and a few more errors, at the same speed: the regression a latency-only
# canary misses.
BAD = Profile("bad candidate", error_rate=0.008, mos=3.80, wer_word_error=0.05)


@dataclass
class Settings:
    requests_per_hour: float = 10_000
    quality_sample_rate: float = 0.05
    min_step_duration_s: float = 7200
    min_requests: int = 200
    min_quality_samples: int = 20
    max_extensions: int = 1
    alpha: float = 0.05
    judge_min_samples: int = 20


@dataclass
class Arm:
    errors: int = 0
    timeouts: int = 0
    total: int = 0
    latency: list = field(default_factory=list)
    rtf: list = field(default_factory=list)
    mos: list = field(default_factory=list)
    wer: list = field(default_factory=list)

    def add(self, rng, profile: Profile, n: int, quality_n: int) -> None:
        if n <= 0:
            return
        errors = int(rng.binomial(n, profile.error_rate))
        timeouts = int(rng.binomial(n - errors, profile.timeout_rate))
        ok = n - errors - timeouts
        self.total += n
        self.errors += errors
        self.timeouts += timeouts
        self.latency += list(profile.latency_ms_per_char * rng.lognormal(0, 0.35, ok))
        self.rtf += list(profile.rtf * rng.lognormal(0, 0.3, ok))
        self.mos += list(np.clip(rng.normal(profile.mos, 0.2, quality_n), 1, 5))
        self.wer += list(rng.binomial(12, profile.wer_word_error, quality_n) / 12)


def metrics(c: Arm, s: Arm) -> list[MetricSamples]:
    """The same metric set the evaluator judges for the stock family."""
    return [
        MetricSamples.rate(
            "error_rate",
            Direction.LOWER_IS_BETTER,
            candidate=(c.errors, c.total),
            stable=(s.errors, s.total),
        ),
        MetricSamples.rate(
            "timeout_rate",
            Direction.LOWER_IS_BETTER,
            candidate=(c.timeouts, c.total),
            stable=(s.timeouts, s.total),
        ),
        MetricSamples("latency_per_char_ms", Direction.LOWER_IS_BETTER, c.latency, s.latency),
        MetricSamples("rtf", Direction.LOWER_IS_BETTER, c.rtf, s.rtf),
        MetricSamples("quality_wer", Direction.LOWER_IS_BETTER, c.wer, s.wer),
        MetricSamples("quality_mos", Direction.HIGHER_IS_BETTER, c.mos, s.mos),
    ]


def simulate(candidate: Profile, settings: Settings, seed: int, horizon_h: float = 96):
    """One rollout. Returns its timeline (percent over time), looks and decisions."""
    rng = np.random.default_rng(seed)
    budget = ramp.max_looks(STEPS, settings.max_extensions)
    step, look, extensions, t, step_start = 0, 0, 0, 0.0, 0.0
    early_taken, hold = False, ""
    c, s = Arm(), Arm()
    timeline, looks, decisions = [(0.0, STEPS[0])], [], []
    while t < horizon_h * 3600:
        t += TICK_S
        n = int(rng.poisson(settings.requests_per_hour * TICK_S / 3600))
        nc = int(rng.binomial(n, STEPS[step] / 100))
        # A quality sample renders the request's text with both versions, whichever arm served
        # it, so both arms get one score per sample at any percentage.
        quality_n = int(rng.binomial(n, settings.quality_sample_rate))
        for arm, profile, count in ((c, candidate, nc), (s, STABLE, n - nc)):
            arm.add(rng, profile, count, quality_n)
        state = ramp.StepState(
            elapsed_s=t - step_start,
            min_duration_s=settings.min_step_duration_s,
            candidate_requests=c.total,
            stable_requests=s.total,
            min_requests=settings.min_requests,
            candidate_quality_samples=len(c.mos),
            stable_quality_samples=len(s.mos),
            min_quality_samples=settings.min_quality_samples,
            extensions=extensions,
            max_extensions=settings.max_extensions,
            early_look_taken=early_taken,
            looks_left=budget - look,
            hold_reason=hold,
        )
        decision = ramp.decide(state)
        if decision.take_look:
            look += 1
            early_taken = early_taken or decision.early
            verdict = judge(
                metrics(c, s),
                look,
                budget,
                settings.judge_min_samples,
                settings.alpha,
                spending=ramp.SPENDING,
            )
            looks.append({"t_h": t / 3600, "step": step, "verdict": verdict.to_dict()})
            decision = ramp.decide(state, [verdict.outcome])
        if decision.action in ("wait",):
            continue
        decisions.append(
            {
                "t_h": t / 3600,
                "action": decision.action,
                "step": step,
                "reason": decision.reason,
                "hold_reason": decision.hold_reason,
            }
        )
        if decision.action == "fail":
            timeline.append((t, 0.0))
            break
        if decision.action == "hold":
            hold = decision.hold_reason
        elif decision.action == "extend":
            extensions += 1
        elif decision.action == "advance":
            # A step at 100 % has no stable arm left to compare: passing the step before it
            # completes the rollout (as `lifecycle.advance` does).
            if step + 1 >= len(STEPS) - 1:
                decisions[-1]["action"] = "complete"
                timeline.append((t, 100.0))
                break
            step, extensions, early_taken, step_start = step + 1, 0, False, t
            c, s = Arm(), Arm()
            timeline.append((t, STEPS[step]))
    return {
        "timeline": [(x / 3600, p) for x, p in timeline],
        "looks": looks,
        "decisions": decisions,
        "end_h": t / 3600,
    }


def repeated(candidate: Profile, settings: Settings, runs: int, seed0: int) -> dict:
    outcomes, hours = [], []
    for i in range(runs):
        result = simulate(candidate, settings, seed=seed0 + i)
        last = result["decisions"][-1]["action"] if result["decisions"] else "running"
        outcomes.append(last)
        hours.append(result["end_h"])
    fails = [h for o, h in zip(outcomes, hours, strict=True) if o == "fail"]
    return {
        "runs": runs,
        "rolled_back": outcomes.count("fail"),
        "completed": outcomes.count("complete"),
        "held": outcomes.count("hold"),
        "median_hours_to_rollback": float(np.median(fails)) if fails else None,
        "median_hours_to_end": float(np.median(hours)),
    }


def plot(results: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"good candidate": "tab:green", "bad candidate": "tab:red"}
    shown = ("quality_mos", "quality_wer", "error_rate", "latency_per_char_ms")
    titles = {
        "quality_mos": "MOS (DNSMOS) shift, candidate − stable",
        "quality_wer": "WER shift",
        "error_rate": "error-rate difference",
        "latency_per_char_ms": "latency per char shift (ms)",
    }
    fig, axes = plt.subplots(
        len(shown) + 1, 1, figsize=(10, 13), sharex=True, height_ratios=[1.4] + [1] * len(shown)
    )
    markers = {"advance": "^", "extend": "D", "hold": "s", "fail": "X", "complete": "*"}
    top = axes[0]
    for name, result in results.items():
        colour = colours[name]
        xs, ys = zip(*result["timeline"], strict=True)
        top.step(
            list(xs) + [result["end_h"]],
            list(ys) + [ys[-1]],
            where="post",
            color=colour,
            label=name,
            linewidth=2,
        )
        for d in result["decisions"]:
            y = next(p for x, p in reversed(result["timeline"]) if x <= d["t_h"])
            top.scatter(
                d["t_h"],
                max(y, 0.6),
                marker=markers[d["action"]],
                s=90,
                color=colour,
                edgecolor="black",
                zorder=3,
            )
        for offset, metric in enumerate(shown, start=1):
            ax = axes[offset]
            for look in result["looks"]:
                m = next(m for m in look["verdict"]["metrics"] if m["name"] == metric)
                if m["effect"] is None:
                    continue
                low, high = m["ci_low"], m["ci_high"]
                ax.errorbar(
                    look["t_h"],
                    m["effect"],
                    yerr=[[m["effect"] - low], [high - m["effect"]]],
                    fmt="o" if m["decision"] != "fail" else "X",
                    color=colour,
                    capsize=3,
                    markersize=8 if m["decision"] == "fail" else 5,
                )
    top.set_yscale("symlog", linthresh=1)
    top.set_yticks(STEPS)
    top.set_yticklabels([f"{p:g} %" for p in STEPS])
    top.set_ylabel("candidate traffic")
    top.set_title("Simulated ramp: decisions ▲ advance  ◆ extend  ■ hold  ✖ roll back  ★ complete")
    top.legend(loc="center right")
    for offset, metric in enumerate(shown, start=1):
        ax = axes[offset]
        ax.axhline(0, color="grey", linewidth=0.8)
        ax.set_ylabel(titles[metric], fontsize=8)
        ax.grid(alpha=0.3)
    axes[1].set_title(
        "per look: effect and its repeated confidence interval (✖ = the metric failed)", fontsize=9
    )
    axes[-1].set_xlabel("hours since the rollout started")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plot", default="docs/images/rollout-ramp.png")
    parser.add_argument("--json")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    settings = Settings()
    started = time.perf_counter()
    results = {p.name: simulate(p, settings, seed=args.seed) for p in (GOOD, BAD)}
    plot(results, args.plot)
    summary = {
        "settings": settings.__dict__,
        "spending": ramp.SPENDING,
        "max_looks": ramp.max_looks(STEPS, settings.max_extensions),
        "example": {
            name: {"decisions": r["decisions"], "end_h": r["end_h"], "looks": len(r["looks"])}
            for name, r in results.items()
        },
        "a_a": repeated(STABLE, settings, args.runs, 10_000),
        "good": repeated(GOOD, settings, args.runs, 20_000),
        "bad": repeated(BAD, settings, args.runs, 30_000),
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps({k: v for k, v in summary.items() if k != "example"}, indent=2))
    for name, r in summary["example"].items():
        print(name, [(round(d["t_h"], 1), d["action"], d["step"]) for d in r["decisions"]])
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(summary, fh, indent=2)


if __name__ == "__main__":
    main()
