"""The guardrails evaluator: judge each running rollout's candidate against stable over the
current step's window, and advance, extend, hold or fail it (`rollout.ramp` has the rules,
`rollout.stats` the tests, `lifecycle` writes the decisions).

Window: the rollout's requests created since the step started that ended (succeeded, or failed
by a platform fault; a client's bad input or a revoked consent says nothing about the model),
and the quality samples of the same step.

Metrics per arm: error rate (every platform fault) and timeout rate (rates, Fisher); synthesis
latency per character and the real-time factor (continuous, Mann-Whitney); and from scored
quality samples, where one text was rendered by both versions: ASR WER (lower is better),
predicted MOS and, for voice families, speaker similarity (higher is better).

Groups: a tenant with at least ``tenant_min_requests`` requests in each arm is judged on its
own; the rest are pooled. One `judge` call per group at the same look; any group failing
fails the rollout. ``Rollout.look`` counts the looks taken; ``last_evaluated_at`` is when the
last look was taken (the ramp allows one early-harm look per step).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
from django.db import transaction
from django.utils import timezone

from rollout import ramp
from rollout.models import STOCK_FAMILY, QualitySample, Rollout
from rollout.services import lifecycle, window
from rollout.services.window import ARMS, CANDIDATE, STABLE, ArmSamples
from rollout.stats import Direction, MetricKind, MetricSamples, judge

logger = logging.getLogger(__name__)

POOLED = lifecycle.POOLED
JUDGE_MIN_SAMPLES = 5
QUALITY = (
    ("wer", Direction.LOWER_IS_BETTER),
    ("mos", Direction.HIGHER_IS_BETTER),
    ("similarity", Direction.HIGHER_IS_BETTER),
)


@dataclass
class _Group:
    arms: dict[str, ArmSamples] = field(default_factory=lambda: {a: ArmSamples() for a in ARMS})
    samples: int = 0  # quality samples of any status
    scored: int = 0

    def add(self, other: _Group) -> None:
        for arm in ARMS:
            self.arms[arm].extend(other.arms[arm])
        self.samples += other.samples
        self.scored += other.scored


def _window(rollout: Rollout, now) -> tuple[dict[str, _Group], dict[str, int]]:
    """Per tenant: the window's request and quality data. Plus quality sample status counts."""
    started = rollout.step_started_at or rollout.created_at
    groups: dict[str, _Group] = defaultdict(_Group)
    rows = window.synthesis_requests().filter(
        rollout=rollout,
        rollout_arm__in=ARMS,
        created_at__gte=started,
        created_at__lte=now,
        status__in=window.TERMINAL,
    )
    for tenant, arm, *values in rows.values_list(
        "tenant_id", "rollout_arm", *window.REQUEST_FIELDS
    ).iterator():
        groups[str(tenant)].arms[arm].add_request(*values)

    statuses = {status: 0 for status in QualitySample.Status.values}
    samples = QualitySample.dangerously_unscoped.filter(
        rollout=rollout, step_index=rollout.step_index, created_at__gte=started, created_at__lte=now
    ).values_list("tenant_id", "status", "candidate_scores", "stable_scores")
    for tenant, status, candidate, stable in samples:
        statuses[status] += 1
        group = groups[str(tenant)]
        group.samples += 1
        if status == QualitySample.Status.SCORED:
            group.scored += 1
            group.arms[CANDIDATE].add_scores(candidate or {})
            group.arms[STABLE].add_scores(stable or {})
    return groups, statuses


def _grouped(rollout: Rollout, per_tenant: dict[str, _Group]) -> dict[str, _Group]:
    """Large tenants alone, the rest pooled (left out when it has no requests)."""
    out, pooled = {}, _Group()
    for tenant, group in sorted(per_tenant.items()):
        if min(group.arms[a].requests for a in ARMS) >= max(1, rollout.tenant_min_requests):
            out[lifecycle.tenant_group(tenant)] = group
        else:
            pooled.add(group)
    if any(pooled.arms[a].requests for a in ARMS) or not out:
        out[POOLED] = pooled
    return out


def _metrics(rollout: Rollout, group: _Group) -> list[MetricSamples]:
    c, s = group.arms[CANDIDATE], group.arms[STABLE]
    metrics = [
        MetricSamples("error_rate", Direction.LOWER_IS_BETTER, c.errors, s.errors, MetricKind.RATE),
        MetricSamples(
            "timeout_rate", Direction.LOWER_IS_BETTER, c.timeouts, s.timeouts, MetricKind.RATE
        ),
        MetricSamples(
            "latency_per_char_ms",
            Direction.LOWER_IS_BETTER,
            c.latency_per_char_ms,
            s.latency_per_char_ms,
        ),  # fmt: skip
        MetricSamples("rtf", Direction.LOWER_IS_BETTER, c.rtf, s.rtf),
    ]
    if _wants_quality(rollout) and group.samples:
        names = [(n, d) for n, d in QUALITY if n != "similarity" or rollout.family != STOCK_FAMILY]
        for name, direction in names:
            # Samples taken but none scored: the scoring pipeline is broken (unavailable).
            candidate = c.quality[name] or None
            stable = s.quality[name] or None
            metrics.append(MetricSamples(f"quality_{name}", direction, candidate, stable))
    return metrics


def _wants_quality(rollout: Rollout) -> bool:
    return rollout.quality_sample_rate > 0 and rollout.min_quality_samples > 0


def _percentiles(group: _Group) -> dict:
    out = {}
    for name in ("latency_per_char_ms", "rtf"):
        out[name] = {}
        for arm in ARMS:
            values = getattr(group.arms[arm], name)
            out[name][arm] = (
                {"p50": float(np.percentile(values, 50)), "p95": float(np.percentile(values, 95))}
                if values
                else None
            )
    return out


def _state(rollout: Rollout, per_tenant: dict[str, _Group], statuses: dict, now):
    total = _Group()
    for group in per_tenant.values():
        total.add(group)
    started = rollout.step_started_at or rollout.created_at
    quality_minimum = rollout.min_quality_samples if _wants_quality(rollout) else 0
    unavailable = (
        _wants_quality(rollout)
        and statuses[QualitySample.Status.FAILED] > 0
        and statuses[QualitySample.Status.SCORED] == 0
        and statuses[QualitySample.Status.PENDING] == 0
    )
    budget = ramp.max_looks(rollout.steps, rollout.max_extensions)
    state = ramp.StepState(
        elapsed_s=(now - started).total_seconds(),
        min_duration_s=rollout.min_step_duration_s,
        candidate_requests=total.arms[CANDIDATE].requests,
        stable_requests=total.arms[STABLE].requests,
        min_requests=rollout.min_requests,
        candidate_quality_samples=total.scored,
        stable_quality_samples=total.scored,
        min_quality_samples=quality_minimum,
        extensions=rollout.extensions,
        max_extensions=rollout.max_extensions,
        early_look_taken=rollout.last_evaluated_at is not None
        and rollout.last_evaluated_at >= started,
        looks_left=budget - rollout.look,
        hold_reason=rollout.hold_reason,
        unavailable=unavailable,
    )
    return state, total, budget


def evaluate(rollout: Rollout, now=None) -> ramp.Decision:
    """One evaluation of one running rollout; returns the ramp's decision."""
    now = now or timezone.now()
    with transaction.atomic():
        rollout = (
            Rollout.dangerously_unscoped.select_for_update()
            .filter(pk=rollout.pk, state=Rollout.State.RUNNING)
            .first()
        )
        if rollout is None:
            return ramp.Decision("wait", reason="not running")
        per_tenant, statuses = _window(rollout, now)
        state, total, budget = _state(rollout, per_tenant, statuses, now)
        decision = ramp.decide(state)
        started = rollout.step_started_at or rollout.created_at
        evidence = {
            "step": rollout.step_index,
            "percent": rollout.percent,
            "window": {"from": started.isoformat(), "to": now.isoformat()},
            "counts": {
                "candidate_requests": state.candidate_requests,
                "stable_requests": state.stable_requests,
                "quality_samples": statuses,
            },
            "minimums": {
                "duration_s": state.deadline_s,
                "elapsed_s": round(state.elapsed_s, 3),
                "requests": state.min_requests,
                "quality_samples": state.min_quality_samples,
            },
            "groups": {},
        }
        if decision.take_look:
            look = rollout.look + 1
            evidence |= {"look": look, "max_looks": budget, "early": decision.early}
            outcomes = []
            # The ramp already gated the step on its minimums; per metric and group, judge only
            # needs enough samples for a test to mean anything (a failing candidate has few
            # successful requests to time, and its error rate must still be able to fail it).
            minimums = [rollout.min_requests, state.min_quality_samples or rollout.min_requests]
            min_samples = max(2, min(JUDGE_MIN_SAMPLES, *minimums))
            groups = _grouped(rollout, per_tenant)
            # Any group failing fails the rollout: split alpha across groups (Bonferroni), so
            # more tenants do not mean more false rollbacks.
            alpha = rollout.alpha / len(groups)
            for name, group in groups.items():
                verdict = judge(
                    _metrics(rollout, group),
                    look,
                    budget,
                    min_samples,
                    alpha,
                    spending=ramp.SPENDING,
                )
                outcomes.append(verdict.outcome)
                evidence["groups"][name] = verdict.to_dict() | {
                    "percentiles": _percentiles(group),
                    "requests": {a: group.arms[a].requests for a in ARMS},
                    "quality_samples": group.scored,
                }
            decision = ramp.decide(state, outcomes)
            evidence["outcome"] = ramp.combine(outcomes)
            Rollout.dangerously_unscoped.filter(pk=rollout.pk).update(
                look=look, last_evaluated_at=now
            )
            rollout.look, rollout.last_evaluated_at = look, now
        else:
            evidence["outcome"] = decision.hold_reason or ""
        if decision.hold_reason == ramp.HOLD_UNAVAILABLE:
            logger.warning(
                "rollout %s: guardrail metrics unavailable, holding at step %s (%s)",
                rollout.pk,
                rollout.step_index,
                statuses,
            )
        _apply(rollout, decision, evidence)
    return decision


def _failing(evidence: dict) -> str:
    failed = [
        f"{group}:{metric['name']}"
        for group, verdict in evidence["groups"].items()
        for metric in verdict["metrics"]
        if metric["decision"] == "fail"
    ]
    return "guardrail failed: " + ", ".join(failed)


def _apply(rollout: Rollout, decision: ramp.Decision, evidence: dict) -> None:
    outcome = evidence.get("outcome", "")
    if decision.action == "advance":
        lifecycle.advance(rollout, outcome=outcome, evidence=evidence, reason=decision.reason)
    elif decision.action == "fail":
        lifecycle.fail(rollout, outcome=outcome, evidence=evidence, reason=_failing(evidence))
    elif decision.action == "extend":
        outcome = outcome or ramp.HOLD_INSUFFICIENT
        lifecycle.extend(rollout, outcome=outcome, evidence=evidence, reason=decision.reason)
    elif decision.action == "hold" and decision.hold_reason != rollout.hold_reason:
        lifecycle.hold(
            rollout,
            outcome=decision.hold_reason,
            evidence=evidence,
            hold_reason=decision.hold_reason,
            reason=decision.reason,
        )


def evaluate_all(now=None) -> dict[str, str]:
    """Evaluate every running rollout; one failing evaluation does not stop the others."""
    results = {}
    for rollout in Rollout.dangerously_unscoped.filter(state=Rollout.State.RUNNING):
        try:
            results[str(rollout.pk)] = evaluate(rollout, now).action
        except Exception:
            logger.exception("evaluating rollout %s failed", rollout.pk)
            results[str(rollout.pk)] = "error"
    return results
