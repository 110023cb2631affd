"""The worker pipeline: claim a request, run it, and end it (succeed or fail), plus the reaper.

Claim (`queued -> processing`) -> synthesize chunk by chunk -> watermark (fail closed) ->
encode -> store -> commit quota. Any failure refunds the reservation; every request ends
succeeded or failed, and success is accepted only from `processing`.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from datetime import timedelta

import numpy as np
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from core import metrics
from core.storage import get_storage, tenant_key
from rollout import services as rollout
from rollout.engines import engine_cache
from rollout.services import quality
from speech import audio, dsp, text
from speech.engines.base import SynthesisControls, iter_synthesis
from synthesis import channels
from synthesis.models import SynthesisRequest
from synthesis.services import prompt_cache
from synthesis.services.queueing import DELIVER_WEBHOOK_TASK, enqueue
from synthesis.watermarking import WatermarkFailed, backends, watermark_clip, watermark_stream
from tenancy.models import UsageRecord
from tenancy.services import quotas, usage
from voices.services import ConsentRevoked, VoiceNotReady, check_usable_now

logger = logging.getLogger(__name__)

CROSSFADE_MS = 30.0


class _JoinAndMark:
    """Chunks joined as ``crossfade_join`` joins them and marked by the streaming embedder as
    they come: what ``push`` and ``close`` return, concatenated, is the clip ``watermark_clip``
    gives for the joined chunks. Raises WatermarkFailed."""

    def __init__(self, job: SynthesisRequest, sr: int):
        self.joiner = dsp.CrossfadeJoiner(sr, CROSSFADE_MS)
        self.marker = watermark_stream(job, sr)

    def push(self, samples: np.ndarray, pause_ms: int) -> np.ndarray:
        return self.marker.write(self.joiner.push(samples, pause_ms))

    def close(self) -> list[np.ndarray]:
        return [self.marker.write(self.joiner.close()), self.marker.close()]


class _StreamSink:
    """Sends a streamed request's audio as the engine produces it: chunks are joined as
    ``crossfade_join`` joins them, marked by a streaming embedder (state carried across
    chunks, so the mark is the whole clip's), encoded and published once final. Nothing
    leaves unmarked, and the stored clip is exactly what was sent."""

    def __init__(self, job: SynthesisRequest, sr: int):
        self.job = job
        self.marking = _JoinAndMark(job, sr)
        # Encoded bytes go out as soon as ffmpeg has them, not at the next sentence.
        self.encoder = audio.StreamEncoder(
            job.format, sr, job.sample_rate or sr, on_bytes=self._publish
        )
        self.sent: list[np.ndarray] = []

    def add(self, samples: np.ndarray, pause_ms: int) -> None:
        self._send(self.marking.push(samples, pause_ms))

    def finish(self) -> np.ndarray:
        """Send the rest; returns the whole marked clip that was sent."""
        for marked in self.marking.close():
            self._send(marked)
        self.encoder.close()
        return np.concatenate(self.sent)

    def _send(self, marked: np.ndarray) -> None:
        if len(marked):
            self.sent.append(marked)
            self.encoder.write(marked)

    def _publish(self, data: bytes) -> None:
        if data:
            channels.publish_chunk(str(self.job.pk), data)

    def abort(self) -> None:
        self.encoder.abort()


class _MarkAhead:
    """A sync request's audio marked sentence by sentence on a second thread while the engine
    makes the next sentence, so little marking is left when synthesis ends (``_JoinAndMark``:
    the result is the clip ``watermark_clip`` would give). Only where every configured
    backend marks a stream (see ``_can_mark_ahead``)."""

    _STOP = object()

    def __init__(self, job: SynthesisRequest, sr: int):
        self.marking = _JoinAndMark(job, sr)
        self.pieces: queue.SimpleQueue = queue.SimpleQueue()
        self.marked: list[np.ndarray] = []
        self.error: Exception | None = None
        self.thread = threading.Thread(target=self._mark, name=f"mark-{job.pk}", daemon=True)
        self.thread.start()

    def add(self, samples: np.ndarray, pause_ms: int) -> None:
        self.pieces.put((samples, pause_ms))

    def finish(self) -> np.ndarray:
        """The whole marked clip. Raises what marking raised (WatermarkFailed)."""
        self.pieces.put(None)
        self.thread.join()
        if self.error is not None:
            raise self.error
        return np.concatenate(self.marked)

    def abort(self) -> None:
        self.pieces.put(self._STOP)

    def _mark(self) -> None:
        try:
            while (piece := self.pieces.get()) is not None:
                if piece is self._STOP:
                    return
                self.marked.append(self.marking.push(*piece))
            self.marked += self.marking.close()
        except Exception as exc:  # noqa: BLE001 - finish() raises it in the task's thread
            self.error = exc


def _can_mark_ahead() -> bool:
    """Every configured backend marks a stream (the built-in one; audiowmark needs the whole
    clip, so with it the whole clip is marked at the end)."""
    return all(backend.streaming for backend in backends())


def _claim(job_id: str) -> SynthesisRequest | None:
    now = timezone.now()
    claimed = SynthesisRequest.dangerously_unscoped.filter(
        pk=job_id, status=SynthesisRequest.Status.QUEUED
    ).update(status=SynthesisRequest.Status.PROCESSING, started_at=now, attempts=F("attempts") + 1)
    job = SynthesisRequest.dangerously_unscoped.select_related(
        "tenant", "tenant__plan", "api_key", "character_reservation", "slot_reservation"
    ).get(pk=job_id)
    for reservation in (job.character_reservation, job.slot_reservation):
        if reservation is not None:
            # The job's own tenant (with its plan) and key: settling reads them, and would
            # otherwise load each once per reservation.
            reservation.tenant, reservation.api_key = job.tenant, job.api_key
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
    sink = held = ahead = None
    try:
        # Again in the worker: the consent may have been revoked while the job was queued.
        check_usable_now(job.voice_id)
        version = rollout.ModelVersion.dangerously_unscoped.get(pk=job.model_version)
        job.model_family = version.family  # for the metrics, without reading it again
        # Held to the end: a hot swap that drops the version meanwhile does not close it.
        held = engine_cache().lease(rollout.spec_for(version))
        engine = held.engine
        sr = engine.sample_rate
        segments = text.prepare(job.text, max_length=job.tenant.plan.max_text_characters)
        controls = SynthesisControls.from_dict(job.controls)
        cache_key = prompt_cache.key_for(job, segments)
        cached = prompt_cache.lookup(cache_key)
        if job.mode == SynthesisRequest.Mode.STREAM:
            sink = _StreamSink(job, sr)
        if cached is not None:
            clip, sr = cached
            job.prompt_cache_hit = True
            if sink is not None:
                sink.add(clip, 0)
        else:
            if sink is None and _can_mark_ahead():
                ahead = _MarkAhead(job, sr)
            started = time.perf_counter()
            parts, pauses = [], []
            for samples, pause_ms in iter_synthesis(engine, segments, controls):
                parts.append(samples)
                pauses.append(pause_ms)
                if sink is not None:
                    sink.add(samples, pause_ms)
                if ahead is not None:
                    ahead.add(samples, pause_ms)
            clip = dsp.crossfade_join(parts, sr, CROSSFADE_MS, pauses)
            job.synthesis_ms = int((time.perf_counter() - started) * 1000)
            prompt_cache.store(cache_key, job.tenant_id, clip, sr)

        started = time.perf_counter()
        check_usable_now(job.voice_id)  # and once more before the rest of the audio leaves
        if sink is not None:
            marked = sink.finish()  # marked as it was sent: store what the client heard
        elif ahead is not None:
            marked = ahead.finish()  # fail closed too: no mark, no audio
        else:
            marked = watermark_clip(job, clip, sr)  # fail closed: no mark, no audio
        encoded = audio.encode(marked, sr, job.format, job.sample_rate or sr)
        key = tenant_key(
            job.tenant_id, "synthesis", f"{job.pk}.{audio.FILE_EXTENSIONS[job.format]}"
        )
        get_storage().put(key, encoded, audio.CONTENT_TYPES[job.format])
        job.encode_ms = int((time.perf_counter() - started) * 1000)
        job.audio_key, job.audio_bytes = key, len(encoded)
        job.audio_seconds = round(len(clip) / sr, 3)
        quality.maybe_sample(job)  # before `succeed` clears the text
        succeed(job, audio=encoded)
    except (ConsentRevoked, VoiceNotReady) as exc:
        fail(job, exc.error_code, exc.message)
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
        if ahead is not None:
            ahead.abort()
        if held is not None:
            held.release()


RESULT_FIELDS = (
    "status",
    "finished_at",
    "text",
    "audio_key",
    "audio_bytes",
    "audio_seconds",
    "queue_wait_ms",
    "synthesis_ms",
    "prompt_cache_hit",
    "encode_ms",
    "watermark_backend",
    "watermark_key_id",
    "watermark_payload",
)


def succeed(job: SynthesisRequest, audio: bytes | None = None) -> None:
    """Record the success, settle the quota and write the usage ledger (one transaction), then
    announce it; `audio`, the stored clip, goes along to a waiting sync request."""
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
        # Same lock order as admission (slot, then characters): the reverse deadlocks against
        # a concurrent admission of the same tenant.
        quotas.commit(job.slot_reservation)
        quotas.commit(job.character_reservation)
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
    _observe(job)
    _announce(job, audio)


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
        for reservation in (job.slot_reservation, job.character_reservation):  # admission's order
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
    _observe(job)
    _announce(job)


def _observe(job: SynthesisRequest) -> None:
    try:
        family = getattr(job, "model_family", None) or (
            rollout.ModelVersion.dangerously_unscoped.filter(pk=job.model_version)
            .values_list("family", flat=True)
            .first()
        )
    except Exception:  # metrics never fail a request
        logger.exception("reading the family of %s failed", job.model_version)
        return
    metrics.record_synthesis(
        model_version=job.model_version,
        family=family or "",
        tenant=job.tenant,
        arm=job.rollout_arm,
        status=job.status,
        code=job.error_code,
        characters=job.characters,
        synthesis_s=job.synthesis_ms / 1000 if job.synthesis_ms is not None else None,
        audio_s=job.audio_seconds,
    )


# What a success's `end` message carries, so the waiting web process needs no reload.
ANNOUNCED_FIELDS = (*RESULT_FIELDS, "started_at", "attempts")


def _announce(job: SynthesisRequest, audio: bytes | None = None) -> None:
    result = None
    if job.status == SynthesisRequest.Status.SUCCEEDED:
        result = {name: getattr(job, name) for name in ANNOUNCED_FIELDS}
        for name in ("finished_at", "started_at"):
            result[name] = result[name].isoformat() if result[name] else None
        if (
            job.mode != SynthesisRequest.Mode.SYNC
            or audio is None
            or len(audio) > settings.SYNTHESIS_INLINE_AUDIO_MAX_BYTES
        ):
            audio = None  # nobody waits for it here, or too large: read back from storage
    else:
        audio = None
    channels.publish_end(
        str(job.pk),
        audio=audio,
        status=job.status,
        error_code=job.error_code,
        error_message=job.error_message,
        result=result,
    )
    if job.webhook_url:
        transaction.on_commit(lambda: enqueue(DELIVER_WEBHOOK_TASK, str(job.pk)))


def cancel_for_voices(tenant, voice_ids, code: str, message: str) -> int:
    """Fail (and refund) the voices' queued and processing requests at once: a consent ended.
    A worker mid-request finds its request failed and delivers nothing."""
    jobs = (
        SynthesisRequest.objects.for_tenant(tenant)
        .select_related("tenant", "api_key", "character_reservation", "slot_reservation")
        .filter(
            voice_id__in=list(voice_ids),
            status__in=[SynthesisRequest.Status.QUEUED, SynthesisRequest.Status.PROCESSING],
        )
    )
    count = 0
    for job in jobs:
        fail(job, code, message)
        count += 1
    return count


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
