"""Synthesis: validate and admit a request (web), run it (worker), settle quota and usage.

Request path: voice and state -> text and controls -> reserve quota (characters + a concurrency
slot) -> resolve the model version -> create the SynthesisRequest -> dispatch to `gpu`.
Worker path: claim -> synthesize chunk by chunk -> watermark (fail closed) -> encode -> store ->
commit quota. Any failure refunds the reservation; every request ends succeeded or failed.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from core.errors import ApiError
from core.storage import get_storage, tenant_key
from rollout import services as rollout
from synthesis import audio, channels, dsp, text
from synthesis.engines.base import ControlError, SynthesisControls, iter_synthesis
from synthesis.engines.cache import engine_cache
from synthesis.models import SynthesisRequest
from synthesis.watermarking import WatermarkFailed, watermark_clip
from tenancy.models import UsageRecord
from tenancy.services import quotas, usage
from voices import services as voices

logger = logging.getLogger(__name__)

DEFAULT_FORMAT = "wav"
# Streaming emits audio in pieces of at least this length so each piece carries a watermark.
STREAM_MIN_PIECE_S = 2.5
# Rough speaking rate, to predict whether the text still to come makes a long enough piece.
CHARS_PER_SECOND = 14.0


class InvalidSynthesisRequest(ApiError):
    default_code = "invalid_request"


@dataclass
class SynthesisParams:
    voice: str
    text: str
    format: str = DEFAULT_FORMAT
    sample_rate: int | None = None
    mode: str = SynthesisRequest.Mode.SYNC
    controls: dict = field(default_factory=dict)
    webhook_url: str = ""


# --- admission (web process) ------------------------------------------------------------------
def billable_characters(raw_text: str) -> int:
    """Characters of speakable text: SSML markup is not billed."""
    return sum(len(segment.text) for segment in text.parse_ssml(raw_text))


def validate(tenant, params: SynthesisParams) -> tuple[SynthesisControls, int]:
    try:
        text.prepare(params.text, max_length=tenant.plan.max_text_characters)
    except text.TextError as exc:
        raise InvalidSynthesisRequest(exc.message, code=exc.code) from exc
    try:
        controls = SynthesisControls.from_dict(params.controls)
    except ControlError as exc:
        raise InvalidSynthesisRequest(
            f"{exc.field}: {exc.message}",
            code="invalid_control",
            details={"field": exc.field, "allowed": exc.allowed},
        ) from exc
    except TypeError as exc:
        raise InvalidSynthesisRequest(str(exc), code="invalid_control") from exc
    if params.format not in audio.FORMATS:
        raise InvalidSynthesisRequest(
            f"Unsupported format {params.format!r}.",
            code="unsupported_format",
            details={"allowed": list(audio.FORMATS)},
        )
    if params.sample_rate is not None and params.sample_rate not in audio.VALID_SAMPLE_RATES:
        raise InvalidSynthesisRequest(
            f"Unsupported sample_rate {params.sample_rate}.",
            code="unsupported_sample_rate",
            details={"allowed": list(audio.VALID_SAMPLE_RATES)},
        )
    return controls, billable_characters(params.text)


def submit(tenant, api_key, params: SynthesisParams, request_id: str) -> SynthesisRequest:
    """Validate, reserve quota and queue the job. Raises ApiError subclasses with stable codes."""
    voice = voices.resolve_voice(tenant, params.voice)
    controls, characters = validate(tenant, params)
    version = rollout.resolve_model_version(tenant, voice)
    with transaction.atomic():
        slot = quotas.reserve(tenant, api_key, 1, quotas.CONCURRENT_JOBS)
        chars = quotas.reserve(tenant, api_key, characters)
        job = SynthesisRequest.objects.for_tenant(tenant).create(
            tenant=tenant,
            request_id=request_id,
            api_key=api_key,
            voice=voice,
            voice_slug=voice.slug,
            model_version=version.id,
            text=params.text,
            text_sha256=hashlib.sha256(params.text.encode()).hexdigest(),
            characters=characters,
            controls=controls.to_dict(),
            format=params.format,
            sample_rate=params.sample_rate or 0,
            mode=params.mode,
            webhook_url=params.webhook_url,
            character_reservation=chars,
            slot_reservation=slot,
        )
        transaction.on_commit(lambda: dispatch(job))
    return job


def dispatch(job: SynthesisRequest) -> None:
    from synthesis.tasks import synthesize

    synthesize.apply_async(
        args=[str(job.pk)], queue=settings.SYNTHESIS_QUEUE, routing_key=settings.SYNTHESIS_QUEUE
    )


# --- execution (worker process) ------------------------------------------------------------
class _StreamSink:
    """Groups synthesized chunks into pieces long enough to carry a watermark, marks them,
    encodes them and publishes them as they complete."""

    def __init__(self, job: SynthesisRequest, sr: int, remaining_chars: list[int]):
        self.job, self.sr = job, sr
        self.remaining_chars = remaining_chars
        self.pending: list[np.ndarray] = []
        self.pauses: list[int] = []
        self.encoder = audio.StreamEncoder(job.format, sr, job.sample_rate or sr)

    def add(self, index: int, samples: np.ndarray, pause_ms: int) -> None:
        self.pending.append(samples)
        self.pauses.append(pause_ms)
        pending_s = sum(len(p) for p in self.pending) / self.sr
        still_to_come_s = self.remaining_chars[index] / CHARS_PER_SECOND
        if pending_s >= STREAM_MIN_PIECE_S and still_to_come_s >= STREAM_MIN_PIECE_S:
            self._emit()

    def _emit(self) -> None:
        if not self.pending:
            return
        piece = dsp.crossfade_join(self.pending, self.sr, 30.0, self.pauses)
        self.pending, self.pauses = [], []
        marked = watermark_clip(self.job, piece, self.sr)
        data = self.encoder.write(marked)
        if data:
            channels.publish_chunk(str(self.job.pk), data)

    def finish(self) -> None:
        self._emit()
        tail = self.encoder.close()
        if tail:
            channels.publish_chunk(str(self.job.pk), tail)

    def abort(self) -> None:
        self.encoder.abort()


def _claim(job_id: str) -> SynthesisRequest | None:
    now = timezone.now()
    claimed = SynthesisRequest.dangerously_unscoped.filter(
        pk=job_id, status=SynthesisRequest.Status.QUEUED
    ).update(status=SynthesisRequest.Status.PROCESSING, started_at=now, attempts=F("attempts") + 1)
    job = SynthesisRequest.dangerously_unscoped.select_related(
        "tenant", "tenant__plan", "api_key", "character_reservation", "slot_reservation"
    ).get(pk=job_id)
    if not claimed:
        if job.status == SynthesisRequest.Status.PROCESSING:
            # Redelivered after the worker that held it died: fail it rather than risk a
            # poison request killing workers in a loop.
            fail(job, "worker_lost", "The worker processing this request stopped unexpectedly.")
        return None
    job.queue_wait_ms = int((now - job.created_at).total_seconds() * 1000)
    return job


def run(job_id: str) -> None:
    """Execute one request. Idempotent: a finished request is left alone."""
    job = _claim(job_id)
    if job is None:
        return
    sink = None
    try:
        version = rollout.ModelVersion.objects.get(pk=job.model_version)
        engine = engine_cache().get(rollout.spec_for(version))
        sr = engine.sample_rate
        segments = text.prepare(job.text, max_length=job.tenant.plan.max_text_characters)
        controls = SynthesisControls.from_dict(job.controls)
        remaining = [sum(len(s.text) for s in segments[i + 1 :]) for i in range(len(segments))]
        started = time.perf_counter()
        parts, pauses = [], []
        if job.mode == SynthesisRequest.Mode.STREAM:
            sink = _StreamSink(job, sr, remaining)
        for index, (samples, pause_ms) in enumerate(iter_synthesis(engine, segments, controls)):
            parts.append(samples)
            pauses.append(pause_ms)
            if sink is not None:
                sink.add(index, samples, pause_ms)
        clip = dsp.crossfade_join(parts, sr, 30.0, pauses)
        if sink is not None:
            sink.finish()
        job.synthesis_ms = int((time.perf_counter() - started) * 1000)

        started = time.perf_counter()
        marked = watermark_clip(job, clip, sr)  # fail closed: no mark, no audio
        encoded = audio.encode(marked, sr, job.format, job.sample_rate or sr)
        key = tenant_key(
            job.tenant_id, "synthesis", f"{job.pk}.{audio.FILE_EXTENSIONS[job.format]}"
        )
        get_storage().put(key, encoded, audio.CONTENT_TYPES[job.format])
        job.encode_ms = int((time.perf_counter() - started) * 1000)
        job.audio_key, job.audio_bytes = key, len(encoded)
        job.audio_seconds = round(len(clip) / sr, 3)
        succeed(job)
    except WatermarkFailed as exc:
        fail(job, "watermark_failed", str(exc))
    except text.TextError as exc:
        fail(job, exc.code, exc.message)
    except SoftTimeLimitExceeded:
        fail(job, "synthesis_timeout", "Synthesis exceeded its time limit.")
    except Exception:
        logger.exception("synthesis %s failed", job.pk)
        fail(job, "synthesis_failed", "Synthesis failed on the worker.")
    finally:
        if sink is not None:
            sink.abort()


RESULT_FIELDS = (
    "status",
    "finished_at",
    "text",
    "audio_key",
    "audio_bytes",
    "audio_seconds",
    "queue_wait_ms",
    "synthesis_ms",
    "encode_ms",
    "watermark_backend",
    "watermark_key_id",
    "watermark_payload",
)


def succeed(job: SynthesisRequest) -> None:
    job.status = SynthesisRequest.Status.SUCCEEDED
    job.finished_at = timezone.now()
    job.text = ""  # keep only the hash and length once the audio exists
    with transaction.atomic():
        # Only from `processing`: a request the reaper already failed (and refunded) stays so.
        moved = SynthesisRequest.dangerously_unscoped.filter(
            pk=job.pk, status=SynthesisRequest.Status.PROCESSING
        ).update(**{name: getattr(job, name) for name in RESULT_FIELDS})
        if not moved:
            get_storage().delete(job.audio_key)
            return
        quotas.commit(job.character_reservation)
        quotas.commit(job.slot_reservation)
        usage.record_usage(
            job.tenant,
            api_key=job.api_key,
            request_id=job.request_id,
            voice=job.voice_slug,
            characters=job.characters,
            audio_seconds=job.audio_seconds,
            model_version=job.model_version,
            status=UsageRecord.Status.SUCCEEDED,
        )
    _announce(job)


def fail(job: SynthesisRequest, code: str, message: str) -> None:
    """Terminal failure: refund, record, notify. Safe to call more than once."""
    with transaction.atomic():
        moved = SynthesisRequest.dangerously_unscoped.filter(
            pk=job.pk,
            status__in=[SynthesisRequest.Status.QUEUED, SynthesisRequest.Status.PROCESSING],
        ).update(
            status=SynthesisRequest.Status.FAILED,
            error_code=code,
            error_message=message[:500],
            finished_at=timezone.now(),
            text="",
        )
        if not moved:
            return
        for reservation in (job.character_reservation, job.slot_reservation):
            if reservation is not None:
                quotas.refund(reservation)
        usage.record_usage(
            job.tenant,
            api_key=job.api_key,
            request_id=job.request_id,
            voice=job.voice_slug,
            characters=0,
            audio_seconds=0,
            model_version=job.model_version,
            status=UsageRecord.Status.FAILED,
        )
    job.refresh_from_db()
    _announce(job)


def _announce(job: SynthesisRequest) -> None:
    channels.publish_end(
        str(job.pk), status=job.status, error_code=job.error_code, error_message=job.error_message
    )
    if job.webhook_url:
        from synthesis.tasks import deliver_webhook

        transaction.on_commit(lambda: deliver_webhook.delay(str(job.pk)))


def fail_stuck_requests() -> int:
    """Housekeeping: end requests whose worker vanished (no redelivery came)."""
    limit = timezone.now() - timedelta(seconds=settings.CELERY_SYNTHESIS_TIME_LIMIT * 2)
    queued_limit = timezone.now() - timedelta(hours=1)
    stuck = SynthesisRequest.dangerously_unscoped.select_related(
        "tenant", "api_key", "character_reservation", "slot_reservation"
    ).filter(
        Q(status=SynthesisRequest.Status.PROCESSING, started_at__lt=limit)
        | Q(status=SynthesisRequest.Status.QUEUED, created_at__lt=queued_limit)
    )
    count = 0
    for job in stuck:
        fail(job, "worker_lost", "The request did not finish within its time limit.")
        count += 1
    return count


# --- results (web process) -----------------------------------------------------------------
def wait(job: SynthesisRequest, timeout: float | None = None) -> SynthesisRequest:
    """Block until the worker announces the end of the request, then reload it."""
    timeout = timeout or stream_timeout()
    try:
        channels.wait_for_end(str(job.pk), timeout)
    except channels.ChannelTimeout:
        return time_out(job)
    job.refresh_from_db()
    return job


def time_out(job: SynthesisRequest) -> SynthesisRequest:
    """The web process gave up waiting: fail and refund (unless the job ended meanwhile)."""
    fail(job, "synthesis_timeout", "Synthesis did not finish in time.")
    job.refresh_from_db()
    return job


def stream_timeout() -> float:
    return settings.SYNTHESIS_SYNC_TIMEOUT_S


def audio_bytes(job: SynthesisRequest) -> bytes:
    return get_storage().get(job.audio_key)


def download_url(job: SynthesisRequest) -> str:
    filename = f"{job.pk}.{audio.FILE_EXTENSIONS[job.format]}"
    return get_storage().url(job.audio_key, filename=filename)
