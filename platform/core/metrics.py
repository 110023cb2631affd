"""Prometheus metrics: what they are, and small functions to record them.

Labels: ``model_version`` (a version id), ``family`` (``stock`` or ``voice``, never a voice
id), ``tenant_class`` (the tenant's plan slug; the raw tenant id only when
``METRICS_TENANT_LABEL=id``) and, for synthesis, ``arm`` (``candidate`` / ``stable`` while a
rollout's ramp chose the version, else empty).

Where they are recorded: synthesis outcomes in the worker that ran the request
(`synthesis.services.pipeline`), quality scores where shadow samples are scored, the engine
cache in each worker process (`rollout.engines`). Queue depth and rollout state are read at
scrape time (`StateCollector`, web only). Prefork workers and gunicorn record into
``PROMETHEUS_MULTIPROC_DIR`` when it is set (prometheus-client's multiprocess mode), and a
scrape then merges every process's files.
"""

from __future__ import annotations

import hmac
import logging
import os

from django.conf import settings
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily

logger = logging.getLogger(__name__)

SYNTHESIS_LABELS = ("model_version", "family", "tenant_class", "arm")
QUALITY_LABELS = ("model_version", "family", "tenant_class", "arm")

REQUESTS = Counter(
    "timbre_synthesis_requests",
    "Synthesis requests that ended, by status (succeeded/failed) and code.",
    (*SYNTHESIS_LABELS, "status", "code"),
)
ERRORS = Counter(
    "timbre_synthesis_errors",
    "Failed synthesis requests by error code (timeouts are synthesis_timeout).",
    (*SYNTHESIS_LABELS, "code"),
)
PROMPT_CACHE = Counter(
    "timbre_prompt_cache_lookups",
    "Repeat-prompt cache lookups by result (hit: the engine did not run).",
    ("result",),
)
LATENCY = Histogram(
    "timbre_synthesis_latency_seconds",
    "Engine time of one request (synthesis, without queueing and encoding).",
    SYNTHESIS_LABELS,
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64),
)
LATENCY_PER_CHAR = Histogram(
    "timbre_synthesis_latency_per_char_seconds",
    "Engine time per input character.",
    SYNTHESIS_LABELS,
    buckets=(0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128),
)
RTF = Histogram(
    "timbre_synthesis_rtf",
    "Real-time factor: engine seconds per second of audio.",
    SYNTHESIS_LABELS,
    buckets=(0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 4),
)
UNIT_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)
QUALITY_WER = Histogram(
    "timbre_quality_wer",
    "ASR word error rate of sampled renders (lower is better).",
    QUALITY_LABELS,
    buckets=UNIT_BUCKETS,
)
QUALITY_MOS = Histogram(
    "timbre_quality_mos",
    "Predicted MOS (DNSMOS) of sampled renders, 1-5.",
    QUALITY_LABELS,
    buckets=(1, 1.5, 2, 2.5, 3, 3.25, 3.5, 3.75, 4, 4.25, 4.5, 5),
)
QUALITY_SIMILARITY = Histogram(
    "timbre_quality_similarity",
    "Speaker similarity of sampled renders to the talent (voices only), 0-1.",
    QUALITY_LABELS,
    buckets=UNIT_BUCKETS,
)
# Per worker process ("liveall": each live process's own value, with a pid label).
ENGINE_LOADED = Gauge(
    "timbre_engine_loaded",
    "1 while the worker process holds the version loaded (0 once dropped).",
    ("model_version",),
    multiprocess_mode="liveall",
)
ENGINE_MEMORY = Gauge(
    "timbre_engine_memory_bytes",
    "Estimated memory of each loaded version.",
    ("model_version",),
    multiprocess_mode="liveall",
)
ENGINE_BUDGET = Gauge(
    "timbre_engine_memory_budget_bytes",
    "The worker process's engine memory budget (0: count-bounded only).",
    multiprocess_mode="liveall",
)

# Read at scrape time by StateCollector (listed here so the dashboard test sees every name).
STATE_METRICS = {
    "timbre_queue_depth": "Messages waiting in each Celery queue.",
    "timbre_rollout_percent": "Share of targeted traffic on the candidate, per live rollout.",
    "timbre_rollout_step": "Index of the rollout's current step.",
    "timbre_rollout_state": "1 for the rollout's current state (running/paused).",
    "timbre_rollout_holding": "1 while the ramp holds, by reason (insufficient_data/unavailable).",
}


# --- labels ------------------------------------------------------------------------------
def family_class(family: str) -> str:
    """``stock`` or ``voice``: a voice id would make one series per custom voice."""
    return "stock" if family == "stock" else "voice"


def tenant_class(tenant) -> str:
    if tenant is None:
        return "platform"
    if settings.METRICS_TENANT_LABEL == "id":
        return str(tenant.pk)
    return tenant.plan.slug


def _safe(record):
    """Metrics never fail the request they describe."""

    def wrapper(*args, **kwargs):
        try:
            record(*args, **kwargs)
        except Exception:
            logger.exception("recording metrics failed")

    wrapper.__name__, wrapper.__doc__ = record.__name__, record.__doc__
    return wrapper


# --- recording -----------------------------------------------------------------------------
@_safe
def record_synthesis(
    *,
    model_version: str,
    family: str,
    tenant,
    arm: str = "",
    status: str,
    code: str = "",
    characters: int = 0,
    synthesis_s: float | None = None,
    audio_s: float | None = None,
) -> None:
    """One request that ended: ``status`` succeeded or failed (with the error ``code``)."""
    labels = dict(
        model_version=model_version or "unknown",
        family=family_class(family),
        tenant_class=tenant_class(tenant),
        arm=arm or "",
    )
    REQUESTS.labels(**labels, status=status, code=code or "ok").inc()
    if status != "succeeded":
        ERRORS.labels(**labels, code=code or "unknown").inc()
        return
    if synthesis_s is not None:
        LATENCY.labels(**labels).observe(synthesis_s)
        if characters:
            LATENCY_PER_CHAR.labels(**labels).observe(synthesis_s / characters)
        if audio_s:
            RTF.labels(**labels).observe(synthesis_s / audio_s)


@_safe
def record_quality(
    version_id: str,
    family: str,
    tenant_class: str,
    wer: float | None = None,
    mos: float | None = None,
    similarity: float | None = None,
    *,
    arm: str = "",
) -> None:
    """Scores of one sampled render (None: not measured, e.g. similarity for stock)."""
    labels = dict(
        model_version=version_id, family=family_class(family), tenant_class=tenant_class, arm=arm
    )
    for histogram, value in ((QUALITY_WER, wer), (QUALITY_MOS, mos)):
        if value is not None:
            histogram.labels(**labels).observe(float(value))
    if similarity is not None:
        QUALITY_SIMILARITY.labels(**labels).observe(float(similarity))


@_safe
def record_engines(loaded: dict[str, int], dropped=(), budget_bytes: int = 0) -> None:
    """The worker process's engine cache: {version: estimated bytes} loaded now, and the
    versions it dropped (set to 0: multiprocess files cannot forget a series)."""
    for version in dropped:
        ENGINE_LOADED.labels(model_version=version).set(0)
        ENGINE_MEMORY.labels(model_version=version).set(0)
    for version, size in loaded.items():
        ENGINE_LOADED.labels(model_version=version).set(1)
        ENGINE_MEMORY.labels(model_version=version).set(size)
    ENGINE_BUDGET.set(budget_bytes)


# --- scrape-time state ----------------------------------------------------------------------
# kombu's Redis transport keeps a queue's messages at priorities 0, 3, 6, 9 in separate lists.
_PRIORITY_SEPARATOR = "\x06\x16"
_PRIORITY_STEPS = (0, 3, 6, 9)


def queue_depths() -> dict[str, int]:
    """Messages waiting per Celery queue: Redis LLEN for the Redis broker; otherwise (the
    embedded filesystem broker) the queued synthesis requests, on the synthesis queue."""
    from config.celery import app

    declared = [q.name for q in app.conf.task_queues]
    queues = list(dict.fromkeys([*declared, settings.SYNTHESIS_QUEUE]))  # it may be a custom one
    if settings.CELERY_BROKER_URL.startswith("redis"):
        import redis

        prefix = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("global_keyprefix", "")
        client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=2)
        pipe = client.pipeline(transaction=False)
        for name in queues:
            for step in _PRIORITY_STEPS:
                pipe.llen(f"{prefix}{name}{_PRIORITY_SEPARATOR}{step}" if step else prefix + name)
        counts = pipe.execute()
        n = len(_PRIORITY_STEPS)
        return {name: sum(counts[i * n : (i + 1) * n]) for i, name in enumerate(queues)}
    from django.apps import apps

    request = apps.get_model("synthesis", "SynthesisRequest")
    queued = request.dangerously_unscoped.filter(status="queued").count()
    return {name: (queued if name == settings.SYNTHESIS_QUEUE else 0) for name in queues}


class StateCollector:
    """Queue depth and the live rollouts, read when Prometheus scrapes the web app."""

    def collect(self):
        depth = GaugeMetricFamily(
            "timbre_queue_depth", STATE_METRICS["timbre_queue_depth"], labels=["queue"]
        )
        try:
            for name, count in queue_depths().items():
                depth.add_metric([name], count)
        except Exception:
            logger.exception("reading queue depth failed")
        yield depth
        yield from self._rollouts()

    def _rollouts(self):
        from django.apps import apps

        labels = ["family", "candidate", "stable"]
        percent = GaugeMetricFamily(
            "timbre_rollout_percent", STATE_METRICS["timbre_rollout_percent"], labels=labels
        )
        step = GaugeMetricFamily(
            "timbre_rollout_step", STATE_METRICS["timbre_rollout_step"], labels=labels
        )
        state = GaugeMetricFamily(
            "timbre_rollout_state", STATE_METRICS["timbre_rollout_state"], labels=[*labels, "state"]
        )
        holding = GaugeMetricFamily(
            "timbre_rollout_holding",
            STATE_METRICS["timbre_rollout_holding"],
            labels=[*labels, "reason"],
        )
        rollout = apps.get_model("rollout", "Rollout")
        try:
            live = list(
                rollout.dangerously_unscoped.filter(state__in=rollout.LIVE).values_list(
                    "family",
                    "candidate_id",
                    "stable_id",
                    "percent",
                    "step_index",
                    "state",
                    "hold_reason",
                )
            )
        except Exception:
            logger.exception("reading rollouts failed")
            live = []
        for family, candidate, stable, pct, index, current, hold in live:
            values = [family_class(family), candidate, stable]
            percent.add_metric(values, pct)
            step.add_metric(values, index)
            for name in rollout.LIVE:
                state.add_metric([*values, name], 1.0 if current == name else 0.0)
            holding.add_metric([*values, hold or "none"], 1.0 if hold else 0.0)
        yield from (percent, step, state, holding)


class _Local:
    """This process's own metrics (no multiprocess directory)."""

    def collect(self):
        return REGISTRY.collect()


def scrape_registry(*, state: bool) -> CollectorRegistry:
    """What one scrape serves: this process's metrics, or every process's (multiprocess
    mode), plus the scrape-time state (the web app only: one source for it)."""
    registry = CollectorRegistry(auto_describe=False)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_Local())
    if state:
        registry.register(StateCollector())
    return registry


def exposition(*, state: bool = True) -> bytes:
    return generate_latest(scrape_registry(state=state))


def token_ok(header: str) -> bool:
    """``Authorization: Bearer <METRICS_TOKEN>``, when a token is configured."""
    token = settings.METRICS_TOKEN
    if not token:
        return True
    scheme, _, value = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip(), token)
