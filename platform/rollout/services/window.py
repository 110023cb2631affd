"""Per-version metrics over a time window, from the request log and the quality samples.

Plain functions over `SynthesisRequest` and `QualitySample` rows, shared by the metrics API
(`summarize`) and the guardrails (`arm_samples`: raw per-arm samples to judge). A window is
``[since, until)`` on the request's creation time; only finished requests count.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
from django.apps import apps
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from core.errors import ApiError
from rollout import stats
from rollout.models import ModelVersion, QualitySample, Rollout
from rollout.services.authority import Authority

CANDIDATE, STABLE = "candidate", "stable"
ARMS = (CANDIDATE, STABLE)
FAILED = "failed"
TERMINAL = ("succeeded", FAILED)
QUALITY_METRICS = ("wer", "mos", "similarity")
TIMEOUT_CODES = frozenset({"synthesis_timeout", "worker_lost"})
# Failures that say nothing about the model: the request or the voice was at fault.
NOT_THE_MODELS_FAULT = frozenset(
    {
        "consent_revoked",
        "voice_not_ready",
        "text_empty",
        "text_invalid",
        "text_too_long",
        "text_unspeakable",
    }
)
DEFAULT_VERSION_WINDOW = timedelta(hours=24)
# The level of each arm's own intervals (descriptive; the guardrails judge the difference).
INTERVAL_LEVEL = 0.95


class InvalidWindow(ApiError):
    default_code = "invalid_window"


@dataclass
class ArmSamples:
    """One arm's raw samples in a window: one 0/1 per finished request for the rates, one value
    per successful request for latency and RTF, one per scored quality sample per metric."""

    errors: list[int] = field(default_factory=list)
    timeouts: list[int] = field(default_factory=list)
    latency_per_char_ms: list[float] = field(default_factory=list)
    rtf: list[float] = field(default_factory=list)
    quality: dict[str, list[float]] = field(
        default_factory=lambda: {name: [] for name in QUALITY_METRICS}
    )

    @property
    def requests(self) -> int:
        return len(self.errors)

    def add_request(self, status, error_code, synthesis_ms, characters, audio_seconds) -> None:
        if status == FAILED and error_code in NOT_THE_MODELS_FAULT:
            return
        failed = status == FAILED
        self.errors.append(int(failed))
        self.timeouts.append(int(failed and error_code in TIMEOUT_CODES))
        if failed or not synthesis_ms:
            return
        if characters:
            self.latency_per_char_ms.append(synthesis_ms / characters)
        if audio_seconds:
            self.rtf.append(synthesis_ms / 1000 / audio_seconds)

    def extend(self, other: ArmSamples) -> None:
        self.errors += other.errors
        self.timeouts += other.timeouts
        self.latency_per_char_ms += other.latency_per_char_ms
        self.rtf += other.rtf
        for name in QUALITY_METRICS:
            self.quality[name] += other.quality[name]

    def add_scores(self, scores: dict) -> None:
        for name in QUALITY_METRICS:
            value = scores.get(name)
            if isinstance(value, int | float) and np.isfinite(value):
                self.quality[name].append(float(value))


def parse_window(since: str | None, until: str | None, default_since, default_until=None):
    """``since``/``until`` are ISO 8601 (query parameters); the defaults fill what is missing.
    ``default_since`` is a date-time, or a timedelta before ``until``."""

    def parse(value, name):
        try:
            parsed = parse_datetime(value) if value else None
        except ValueError:  # well-formed but impossible, e.g. month 13
            parsed = None
        if value and parsed is None:
            raise InvalidWindow(f"{name} must be an ISO 8601 date-time.")
        if parsed is not None and timezone.is_naive(parsed):
            parsed = parsed.replace(tzinfo=UTC)
        return parsed

    end = parse(until, "until") or default_until or timezone.now()
    if isinstance(default_since, timedelta):
        default_since = end - default_since
    start = parse(since, "since") or default_since
    if start >= end:
        raise InvalidWindow("since must be before until.")
    return start, end


def step_window(rollout: Rollout) -> tuple[datetime, datetime]:
    """The rollout's current step: from its start to now (or to the rollout's end)."""
    return rollout.step_started_at or rollout.created_at, rollout.ended_at or timezone.now()


def synthesis_requests():
    # By name: the rollout app sits below synthesis and never imports it.
    return apps.get_model("synthesis", "SynthesisRequest").dangerously_unscoped


def _requests(since, until, tenant_ids):
    rows = synthesis_requests().filter(
        created_at__gte=since, created_at__lt=until, status__in=TERMINAL
    )
    return rows if tenant_ids is None else rows.filter(tenant_id__in=list(tenant_ids))


def _samples(since, until, tenant_ids):
    rows = QualitySample.dangerously_unscoped.filter(
        status=QualitySample.Status.SCORED, created_at__gte=since, created_at__lt=until
    )
    return rows if tenant_ids is None else rows.filter(tenant_id__in=list(tenant_ids))


REQUEST_FIELDS = ("status", "error_code", "synthesis_ms", "characters", "audio_seconds")


def arm_samples(
    rollout: Rollout, since: datetime, until: datetime, tenant_ids=None
) -> dict[str, ArmSamples]:
    """Candidate and stable samples of the rollout's ramp traffic (the requests its ramp put in
    an arm) and its quality samples, in the window; ``tenant_ids`` limits both to those
    tenants (None: everybody)."""
    arms = {CANDIDATE: ArmSamples(), STABLE: ArmSamples()}
    requests = _requests(since, until, tenant_ids).filter(
        rollout=rollout, rollout_arm__in=list(arms)
    )
    for arm, *values in requests.values_list("rollout_arm", *REQUEST_FIELDS).iterator():
        arms[arm].add_request(*values)
    samples = _samples(since, until, tenant_ids).filter(rollout=rollout)
    for candidate, stable in samples.values_list("candidate_scores", "stable_scores").iterator():
        arms[CANDIDATE].add_scores(candidate or {})
        arms[STABLE].add_scores(stable or {})
    return arms


def version_samples(version_id: str, since, until, tenant_ids=None) -> ArmSamples:
    """Everything one version served in the window, whatever chose it, and its scores in
    quality samples (as either arm)."""
    samples = ArmSamples()
    requests = _requests(since, until, tenant_ids).filter(model_version=version_id)
    for values in requests.values_list(*REQUEST_FIELDS).iterator():
        samples.add_request(*values)
    scored = _samples(since, until, tenant_ids).filter(
        Q(rollout__candidate_id=version_id) | Q(rollout__stable_id=version_id)
    )
    for candidate_id, candidate, stable in scored.values_list(
        "rollout__candidate_id", "candidate_scores", "stable_scores"
    ).iterator():
        samples.add_scores((candidate if candidate_id == version_id else stable) or {})
    return samples


def _percentile(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 4) if values else None


def _pair(interval) -> list[float] | None:
    return None if interval is None else [round(interval[0], 6), round(interval[1], 6)]


def intervals_of(samples: ArmSamples, level: float = INTERVAL_LEVEL) -> dict:
    """Each metric's interval for one arm, as [low, high] (None without samples): Wilson for
    the rates, order statistics for the percentiles, Student's t for the quality means."""
    n = samples.requests
    return {
        "level": level,
        "error_rate": _pair(stats.rate_interval(sum(samples.errors), n, level)),
        "timeout_rate": _pair(stats.rate_interval(sum(samples.timeouts), n, level)),
        "latency_per_char_ms_p50": _pair(
            stats.quantile_interval(samples.latency_per_char_ms, 0.5, level)
        ),
        "latency_per_char_ms_p95": _pair(
            stats.quantile_interval(samples.latency_per_char_ms, 0.95, level)
        ),
        "rtf_p50": _pair(stats.quantile_interval(samples.rtf, 0.5, level)),
        **{
            name: _pair(stats.mean_interval(values, level))
            for name, values in samples.quality.items()
        },
    }


def summarize(samples: ArmSamples, *, intervals: bool = False) -> dict:
    n = samples.requests
    extra = {"intervals": intervals_of(samples)} if intervals else {}
    return {
        "requests": n,
        "errors": sum(samples.errors),
        "error_rate": round(sum(samples.errors) / n, 6) if n else None,
        "timeout_rate": round(sum(samples.timeouts) / n, 6) if n else None,
        "latency_per_char_ms_p50": _percentile(samples.latency_per_char_ms, 50),
        "latency_per_char_ms_p95": _percentile(samples.latency_per_char_ms, 95),
        "rtf_p50": _percentile(samples.rtf, 50),
        "quality": {
            name: {
                "mean": round(float(np.mean(values)), 4) if values else None,
                "samples": len(values),
            }
            for name, values in samples.quality.items()
        },
        **extra,
    }


def rollout_metrics(
    rollout: Rollout, since, until, tenant_ids=None, *, intervals: bool = False
) -> dict:
    arms = arm_samples(rollout, since, until, tenant_ids)
    versions = {CANDIDATE: rollout.candidate_id, STABLE: rollout.stable_id}
    return {
        "rollout": str(rollout.pk),
        "since": since,
        "until": until,
        "versions": [
            {"arm": arm, "version": versions[arm], **summarize(arms[arm], intervals=intervals)}
            for arm in arms
        ],
    }


def traffic_of(authority: Authority):
    """Whose traffic the caller may see in metrics: a tenant its own, an operator everybody's
    (None)."""
    return None if authority.is_operator else [authority.tenant.pk]


def rollout_metrics_for(
    authority: Authority,
    rollout: Rollout,
    since: str | None = None,
    until: str | None = None,
    *,
    intervals: bool = False,
) -> dict:
    """Candidate and stable side by side over ``[since, until)`` (ISO 8601; default the
    current step, up to the end of an ended rollout), on the caller's visible traffic."""
    authority.require_read(rollout.tenant_id)
    default_since, default_until = step_window(rollout)
    start, end = parse_window(
        since, until, default_since, default_until if rollout.ended_at else None
    )
    return rollout_metrics(rollout, start, end, traffic_of(authority), intervals=intervals)


def version_metrics(version: ModelVersion, stable: ModelVersion | None, since, until, tenant_ids):
    """The version side by side with its family's stable version (when that is another)."""
    shown = [version] + ([stable] if stable is not None and stable.pk != version.pk else [])
    return {
        "since": since,
        "until": until,
        "versions": [
            {
                "version": v.pk,
                "family": v.family,
                "semver": v.semver,
                "role": "stable" if stable is not None and v.pk == stable.pk else "requested",
                **summarize(version_samples(v.pk, since, until, tenant_ids)),
            }
            for v in shown
        ],
    }
