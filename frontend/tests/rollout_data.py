"""Realistic rollout rows for the console's rollout tests: a platform stock rollout at 25 %
and a tenant's own voice rollout with requests and quality samples in its current step, made
with the services and helpers the rollout tests use (no synthesis)."""

from __future__ import annotations

import random

from rollout.models import ModelVersion, QualitySample, RolloutDecision
from rollout.services import lifecycle
from rollout.services.authority import Authority
from rollout.tests.control_support import custom_voice, stock_alias

OPERATOR = Authority.operator("platform-ops")


def measured(version, **metrics) -> None:
    """What the validation job would have stored (rows only: nothing is synthesized)."""
    ModelVersion.dangerously_unscoped.filter(pk=version.pk).update(
        validation={"metrics": metrics, "thresholds": {}, "reasons": []}
    )


def platform_rollout(label: str = "console-canary"):
    """The stock family ramped 5 → 25 → 50 → 100, promoted once by an operator: at 25 %."""
    candidate = stock_alias(label)
    measured(candidate, wer=0.061, mos=3.71, rtf=0.09)
    rollout = lifecycle.start(OPERATOR, candidate, steps=[5, 25, 50, 100], reason="int8 build")
    return lifecycle.promote(OPERATOR, rollout, "5 % step looked healthy")


def voice_rollout(tenant, make_job, *, requests: int = 24, samples: int = 8, seed: int = 7):
    """A custom voice of ``tenant`` whose second version is ramping at 20 %, with finished
    requests in both arms and scored quality samples (the charts then have intervals)."""
    voice, (stable, candidate) = custom_voice(tenant)
    measured(stable, wer=0.048, mos=3.96, rtf=0.21, speaker_similarity=0.83)
    measured(candidate, wer=0.052, mos=4.02, rtf=0.23, speaker_similarity=0.86)
    rollout = lifecycle.start(
        OPERATOR,
        candidate,
        steps=[20, 50, 100],
        min_requests=20,
        min_quality_samples=5,
        reason="fine-tune v2 of the brand voice",
    )
    rng = random.Random(seed)
    for arm, version, slow in (("candidate", candidate, 1.1), ("stable", stable, 1.0)):
        for n in range(requests):
            failed = arm == "candidate" and n % 12 == 5
            make_job(
                tenant,
                model_version=version.pk,
                rollout=rollout,
                rollout_arm=arm,
                status="failed" if failed else "succeeded",
                error_code="synthesis_failed" if failed else "",
                characters=rng.randint(40, 200),
                synthesis_ms=int(rng.uniform(300, 900) * slow),
                audio_seconds=round(rng.uniform(2.0, 9.0), 2),
            )
    for _ in range(samples):
        QualitySample.objects.for_tenant(tenant).create(
            tenant=tenant,
            rollout=rollout,
            step_index=0,
            status="scored",
            candidate_scores={"wer": rng.uniform(0.02, 0.09), "mos": rng.uniform(3.6, 4.2)},
            stable_scores={"wer": rng.uniform(0.02, 0.08), "mos": rng.uniform(3.7, 4.2)},
        )
    return voice, stable, candidate, rollout


def guardrail_look(rollout, tenant, *, stranger: str = "11111111-1111-1111-1111-111111111111"):
    """An automatic decision with per-group evidence as the guardrails write it, including a
    group of another tenant that ``tenant`` must never see."""
    group = {
        "outcome": "insufficient_data",
        "metrics": [
            {"name": "error_rate", "effect": 0.02, "ci_low": -0.05, "ci_high": 0.09},
            {"name": "mos", "effect": -0.05, "ci_low": -0.3, "ci_high": 0.2},
        ],
    }
    return RolloutDecision.objects.create(
        rollout=rollout,
        action="extend",
        automatic=True,
        actor="rollout-evaluator",
        outcome="insufficient_data",
        step_index=rollout.step_index,
        percent_before=rollout.percent,
        percent_after=rollout.percent,
        reason="not enough quality samples yet",
        evidence={
            "step": rollout.step_index,
            "groups": {
                f"tenant:{tenant.pk}": group,
                f"tenant:{stranger}": {"outcome": "fail", "secret_marker": "stranger-verdict"},
                "pooled": {**group, "tenants": [stranger]},
            },
        },
    )
