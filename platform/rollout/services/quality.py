"""Shadow quality sampling: a share of a rollout's requests is rendered again, off the request
path, by both versions on the same text and controls, and both renders are scored
(`speech.quality_compare`). The guardrails compare the two sets of scores.

Which requests: deterministic from the request id (`bucket(request id) < quality_sample_rate`),
so a redelivered request samples the same way. The text is kept on the sample only until it is
scored (or scoring failed), like the request's own text.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core import metrics
from core.queueing import enqueue
from rollout.assignment import bucket
from rollout.models import STOCK_FAMILY, QualitySample, Rollout

logger = logging.getLogger(__name__)

SCORE_QUALITY_TASK = "rollout.tasks.score_quality_sample"
ARMS = ("candidate", "stable")


def maybe_sample(job) -> QualitySample | None:
    """Called by the worker once a rollout request's audio is ready, before its text goes.
    Never fails the request."""
    if not job.rollout_id or job.rollout_arm not in ARMS or not job.text:
        return None
    try:
        rollout = (
            Rollout.dangerously_unscoped.filter(pk=job.rollout_id, state=Rollout.State.RUNNING)
            .only("id", "quality_sample_rate", "step_index", "salt")
            .first()
        )
        if rollout is None or bucket(str(job.pk), f"{rollout.salt}.quality") >= (
            rollout.quality_sample_rate
        ):
            return None
        sample = QualitySample.dangerously_unscoped.create(
            tenant_id=job.tenant_id,
            rollout=rollout,
            request_id=job.pk,
            step_index=rollout.step_index,
            text=job.text,
            controls=job.controls or {},
        )
        transaction.on_commit(
            lambda: enqueue(SCORE_QUALITY_TASK, str(sample.pk), queue=settings.SYNTHESIS_QUEUE)
        )
        return sample
    except Exception:
        logger.exception("quality sampling of %s failed", job.pk)
        return None


def expire_stale(max_age_s: int = 3600) -> int:
    """Housekeeping: a sample whose scoring task was lost must not keep the tenant's text."""
    limit = timezone.now() - timedelta(seconds=max_age_s)
    return QualitySample.dangerously_unscoped.filter(
        status=QualitySample.Status.PENDING, created_at__lt=limit
    ).update(status=QualitySample.Status.FAILED, text="", error="not scored in time")


def _reference_embedding(family: str):
    """A custom voice's talent: the mean embedding of its accepted training recordings (a
    recording rejected as another speaker must not shape the reference)."""
    if family == STOCK_FAMILY:
        return None
    from speech import speaker
    from voices.models import TrainingRecording

    embeddings = [
        e
        for e in TrainingRecording.dangerously_unscoped.filter(
            voice_id=family.removeprefix("voice:"),
            status=TrainingRecording.Status.ACCEPTED,
            embedding__isnull=False,
        ).values_list("embedding", flat=True)[:20]
        if e
    ]
    return speaker.mean_embedding(embeddings) if embeddings else None


def _render(version, sample: QualitySample):
    from rollout.engines import engine_cache
    from rollout.services.registry import spec_for
    from speech import text
    from speech.engines.base import SynthesisControls, synthesize_chunks

    with engine_cache().lease(spec_for(version)) as engine:
        segments = text.prepare(sample.text, max_length=max(len(sample.text), 1) * 4 + 100)
        controls = SynthesisControls.from_dict(sample.controls)
        return synthesize_chunks(engine, segments, controls), engine.sample_rate


def score(sample_id: str) -> str:
    """Render and score one pending sample; returns its final status. Never raises."""
    from speech import quality_compare

    claimed = QualitySample.dangerously_unscoped.filter(
        pk=sample_id, status=QualitySample.Status.PENDING
    ).first()
    if claimed is None:
        return "skipped"
    sample = claimed
    try:
        rollout = Rollout.dangerously_unscoped.select_related("candidate", "stable").get(
            pk=sample.rollout_id
        )
        candidate, sr = _render(rollout.candidate, sample)
        stable, stable_sr = _render(rollout.stable, sample)
        if stable_sr != sr:
            from speech import dsp

            stable = dsp.resample(stable, stable_sr, sr)
        candidate_scores, stable_scores = quality_compare.compare(
            sample.text,
            candidate,
            stable,
            sr,
            reference_embedding=_reference_embedding(rollout.family),
            asr_threads=settings.TIMBRE_ASR_THREADS,
        )
        QualitySample.dangerously_unscoped.filter(pk=sample.pk).update(
            status=QualitySample.Status.SCORED,
            candidate_scores=candidate_scores,
            stable_scores=stable_scores,
            text="",
            scored_at=timezone.now(),
        )
    except Exception as exc:
        logger.warning("scoring quality sample %s failed", sample_id, exc_info=True)
        QualitySample.dangerously_unscoped.filter(pk=sample_id).update(
            status=QualitySample.Status.FAILED,
            text="",
            error=f"{type(exc).__name__}: {exc}"[:300],
            scored_at=timezone.now(),
        )
        return QualitySample.Status.FAILED
    _observe(sample, rollout, candidate_scores, stable_scores)
    return QualitySample.Status.SCORED


def _observe(sample: QualitySample, rollout: Rollout, candidate_scores, stable_scores) -> None:
    try:
        tenant_class = metrics.tenant_class(sample.tenant)
    except Exception:  # metrics never change the sample's outcome
        logger.exception("metrics for quality sample %s failed", sample.pk)
        return
    for version, scores, arm in (
        (rollout.candidate, candidate_scores, "candidate"),
        (rollout.stable, stable_scores, "stable"),
    ):
        metrics.record_quality(version.id, rollout.family, tenant_class, **scores, arm=arm)
