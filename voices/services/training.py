"""Fine-tuning: start (plan limit, consent, data), run on the `gpu` queue, cancel, evaluate,
store the artefact and publish a version.

The model code is `speech.finetune` (training and evaluation) and the adapted engine
(`speech.engines.adapted_engine`), the same code synthesis loads. A version becomes `ready`
only if the consent is still verified and the evaluation gates pass; otherwise it is `failed`
with its metrics.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import time
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from audit import services as audit
from audit.services import Actor, RequestContext
from consent.models import ConsentRecord
from core.errors import ApiError, Conflict
from core.queueing import enqueue
from core.scoping import tenant_context
from core.storage import get_storage, tenant_key
from rollout import services as rollout
from rollout.models import voice_family
from speech import audio as speech_audio
from tenancy.roles import Scope
from tenancy.services import quotas
from tenancy.services.access import Access
from voices.models import FineTuneJob, TrainingRecording, Voice, VoiceVersion

logger = logging.getLogger(__name__)

FINE_TUNE_TASK = "voices.tasks.fine_tune"
# Every HELD_OUT_EVERY-th accepted recording is held out for evaluation (never trained on).
HELD_OUT_EVERY = 5
MIN_HELD_OUT = 3  # speech.finetune.Gates.min_held_out
PROGRESS_INTERVAL_S = 1.0


class FineTuneRefused(ApiError):
    status_code = 409
    default_code = "fine_tune_not_allowed"


def _snapshot(job: FineTuneJob) -> dict:
    return {"status": job.status, "voice": str(job.voice_id), "error_code": job.error_code}


def start(
    access: Access, voice: Voice, *, steps: int | None = None, context: RequestContext | None = None
) -> FineTuneJob:
    access.require(Scope.VOICES_WRITE)
    tenant = access.tenant
    if voice.kind != Voice.Kind.CUSTOM:
        raise FineTuneRefused("Only custom voices are fine-tuned.", code="stock_voice")
    consent = voice.consent
    if consent is None or consent.status != ConsentRecord.Status.VERIFIED:
        state = consent.status if consent else "missing"
        raise FineTuneRefused(
            f"The voice's consent is {state}; fine-tuning needs a verified consent.",
            code="consent_not_verified",
        )
    if voice.status == Voice.Status.DISABLED:
        raise FineTuneRefused("The voice is disabled.", code="voice_disabled")
    accepted = TrainingRecording.objects.for_tenant(tenant).filter(
        voice=voice, status=TrainingRecording.Status.ACCEPTED
    )
    minimum = settings.FINE_TUNE_MIN_RECORDINGS
    if accepted.count() < minimum:
        raise FineTuneRefused(
            f"Fine-tuning needs at least {minimum} accepted recordings; the voice has "
            f"{accepted.count()}. See its dataset report.",
            code="not_enough_training_data",
        )
    steps = int(steps or settings.FINE_TUNE_STEPS)
    if not 10 <= steps <= settings.FINE_TUNE_MAX_STEPS:
        raise FineTuneRefused(
            f"steps must be between 10 and {settings.FINE_TUNE_MAX_STEPS}.",
            code="invalid_request",
            status_code=400,
        )
    with transaction.atomic():
        # One at a time per voice; the row lock makes the check and the insert one step.
        Voice.objects.for_tenant(tenant).select_for_update().filter(pk=voice.pk).first()
        if (
            FineTuneJob.objects.for_tenant(tenant)
            .filter(voice=voice, status__in=FineTuneJob.ACTIVE)
            .exists()
        ):
            raise Conflict("A fine-tune of this voice is already running.", code="fine_tune_active")
        reservation = quotas.reserve(tenant, None, 1, quotas.FINE_TUNES)
        job = FineTuneJob.objects.for_tenant(tenant).create(
            tenant=tenant,
            voice=voice,
            steps=steps,
            reservation=reservation,
            created_by=(context.actor.label if context else access.role)[:200],
        )
        if voice.status in (Voice.Status.DRAFT, Voice.Status.FAILED):
            Voice.objects.for_tenant(tenant).filter(pk=voice.pk).update(
                status=Voice.Status.TRAINING
            )
        audit.record(
            "fine_tune.start", tenant=tenant, context=context, target=job, after=_snapshot(job)
        )
        transaction.on_commit(
            lambda: enqueue(FINE_TUNE_TASK, str(job.pk), queue=settings.FINE_TUNE_QUEUE)
        )
    return job


def cancel(
    access: Access, job: FineTuneJob, *, context: RequestContext | None = None
) -> FineTuneJob:
    access.require(Scope.VOICES_WRITE)
    if job.status not in FineTuneJob.ACTIVE:
        raise Conflict(f"The fine-tune is already {job.status}.", code="fine_tune_finished")
    with transaction.atomic():
        if _end(job, FineTuneJob.Status.CANCELLED, "cancelled", "Cancelled on request."):
            audit.record(
                "fine_tune.cancel", tenant=access.tenant, context=context, target=job,
                after=_snapshot(job),
            )  # fmt: skip
    job.refresh_from_db()
    return job


def cancel_fine_tunes(tenant, voice_ids, code: str, reason: str) -> int:
    """Consent ended: cancel the voices' queued and running fine-tunes (the worker sees it)."""
    jobs = FineTuneJob.objects.for_tenant(tenant).filter(
        voice_id__in=voice_ids, status__in=FineTuneJob.ACTIVE
    )
    return sum(_end(job, FineTuneJob.Status.CANCELLED, code, reason) for job in jobs)


def _end(job: FineTuneJob, status: str, code: str = "", message: str = "", **fields) -> bool:
    """Terminal transition from queued/running, once; settles the plan reservation."""
    with transaction.atomic():
        moved = FineTuneJob.dangerously_unscoped.filter(
            pk=job.pk, status__in=FineTuneJob.ACTIVE
        ).update(
            status=status,
            error_code=code,
            error_message=message[:500],
            finished_at=timezone.now(),
            **fields,
        )
        if not moved:
            return False
        reservation = job.reservation
        if reservation is not None:
            # A produced version counts against the month; a cancelled or failed run does not.
            if status == FineTuneJob.Status.SUCCEEDED:
                quotas.commit(reservation)
            else:
                quotas.refund(reservation)
        voice = Voice.dangerously_unscoped.filter(pk=job.voice_id)
        if status != FineTuneJob.Status.SUCCEEDED:
            # Back to what it was before training: ready with its version, or failed/draft.
            voice.filter(status=Voice.Status.TRAINING, active_version=None).update(
                status=Voice.Status.DRAFT
            )
    return True


# --- the worker ----------------------------------------------------------------------------------
class _Progress:
    """Writes progress to the job row at most once a second, and answers should_stop()."""

    def __init__(self, job: FineTuneJob):
        self.job = job
        self.started = time.monotonic()
        self.last_write = 0.0
        self.last_check = 0.0
        self.stop = False

    def __call__(self, phase: str, step: int, total: int, loss: float | None) -> None:
        now = time.monotonic()
        if now - self.last_write < PROGRESS_INTERVAL_S and step != total:
            return
        self.last_write = now
        weights = {
            "render": (0, 15),
            "features": (15, 25),
            "train": (25, 85),
            "evaluate": (85, 100),
        }
        lo, hi = weights.get(phase, (0, 100))
        percent = lo + (hi - lo) * (step / total if total else 0)
        elapsed = now - self.started
        eta = elapsed * (100 - percent) / percent if percent > 1 else None
        FineTuneJob.dangerously_unscoped.filter(
            pk=self.job.pk, status=FineTuneJob.Status.RUNNING
        ).update(
            phase=phase,
            step=step,
            total_steps=total,
            loss=loss,
            percent=round(percent, 1),
            eta_s=round(eta, 1) if eta is not None else None,
        )

    def should_stop(self) -> bool:
        now = time.monotonic()
        if self.stop or now - self.last_check < PROGRESS_INTERVAL_S:
            return self.stop
        self.last_check = now
        row = (
            FineTuneJob.dangerously_unscoped.filter(pk=self.job.pk)
            .values("status", "voice__consent__status")
            .first()
        )
        self.stop = (
            row is None
            or row["status"] != FineTuneJob.Status.RUNNING
            or row["voice__consent__status"] != ConsentRecord.Status.VERIFIED
        )
        return self.stop


def _claim(job_id: str) -> FineTuneJob | None:
    claimed = FineTuneJob.dangerously_unscoped.filter(
        pk=job_id, status=FineTuneJob.Status.QUEUED
    ).update(status=FineTuneJob.Status.RUNNING, started_at=timezone.now(), phase="queued")
    job = (
        FineTuneJob.dangerously_unscoped.select_related(
            "tenant", "voice", "voice__consent", "reservation"
        )
        .filter(pk=job_id)
        .first()
    )
    if job is None:
        return None
    if not claimed:
        if job.status == FineTuneJob.Status.RUNNING:
            # Redelivered after its worker died: end it rather than loop on a poison job.
            _end(job, FineTuneJob.Status.FAILED, "worker_lost", "The worker stopped unexpectedly.")
        return None
    return job


def _load_utterances(tenant, voice: Voice):
    from speech.finetune import Utterance

    recordings = list(
        TrainingRecording.objects.for_tenant(tenant)
        .filter(voice=voice, status=TrainingRecording.Status.ACCEPTED)
        .order_by("created_at", "filename")
    )
    storage = get_storage()
    utterances = []
    for rec in recordings:
        samples, sr = speech_audio.decode(storage.get(rec.audio_key))
        utterances.append(Utterance(samples=samples, sr=sr, transcript=rec.transcript))
    n_held = max(MIN_HELD_OUT, len(utterances) // HELD_OUT_EVERY)
    held_idx = set(range(len(utterances) - 1, -1, -HELD_OUT_EVERY)[:n_held])
    train = [u for i, u in enumerate(utterances) if i not in held_idx]
    held_out = [u for i, u in enumerate(utterances) if i in held_idx]
    return train, held_out


def run(job_id: str) -> None:
    """The `gpu` task's body. Idempotent: a finished job is left alone."""
    from celery.exceptions import SoftTimeLimitExceeded

    from speech.finetune import FineTuneCancelled, fine_tune

    job = _claim(job_id)
    if job is None:
        return
    tenant, voice = job.tenant, job.voice
    progress = _Progress(job)
    try:
        with tenant_context(tenant):
            train, held_out = _load_utterances(tenant, voice)
            from speech.voice_model import AdapterConfig

            result = fine_tune(
                train,
                held_out,
                config=AdapterConfig(steps=job.steps),
                progress=progress,
                should_stop=progress.should_stop,
                asr_threads=settings.TIMBRE_ASR_THREADS,
            )
            _publish(job, voice, result, len(train), len(held_out))
    except FineTuneCancelled:
        status = (
            FineTuneJob.dangerously_unscoped.filter(pk=job.pk)
            .values_list("status", flat=True)
            .first()
        )
        if status == FineTuneJob.Status.RUNNING:  # the consent ended, not a user's cancel
            _end(job, FineTuneJob.Status.CANCELLED, "consent_revoked", "The consent ended.")
    except SoftTimeLimitExceeded:
        _end(
            job,
            FineTuneJob.Status.FAILED,
            "fine_tune_timeout",
            f"The fine-tune exceeded its time limit ({settings.FINE_TUNE_TIME_LIMIT_S} s).",
        )
    except ApiError as exc:
        _end(job, FineTuneJob.Status.FAILED, exc.error_code, exc.message)
    except Exception:
        logger.exception("fine-tune %s failed", job.pk)
        _end(
            job,
            FineTuneJob.Status.FAILED,
            "fine_tune_failed",
            "The fine-tune failed on the worker.",
        )


def _publish(job: FineTuneJob, voice: Voice, result, n_train: int, n_held: int) -> None:
    """Store the artefact (checksummed), register its model version, create the voice version
    and make it active when it passed and the consent still holds."""
    from speech.engines.adapted_engine import ENGINE_NAME

    tenant = job.tenant
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "adapter.pt"
        result.model.save(path)
        data = path.read_bytes()
    checksum = hashlib.sha256(data).hexdigest()
    number = (
        VoiceVersion.objects.for_tenant(tenant).filter(voice=voice).aggregate(n=Max("number"))["n"]
        or 0
    ) + 1
    key = tenant_key(
        tenant.pk, "voices", str(voice.pk), "versions", f"v{number}-{checksum[:12]}.pt"
    )
    quotas.take(tenant, quotas.STORAGE_BYTES, len(data))
    get_storage().put(key, data)
    from speech.engines.base import ModelVersionSpec

    spec = ModelVersionSpec(ENGINE_NAME, f"{voice.pk}-v{number}", checksum, artefact_key=key)
    with transaction.atomic():
        consent_ok = (
            ConsentRecord.objects.for_tenant(tenant)
            .filter(pk=voice.consent_id, status=ConsentRecord.Status.VERIFIED)
            .select_for_update()
            .exists()
        )
        gate_failures = list(result.gate_failures)
        if not consent_ok:
            gate_failures.append(
                {"metric": "consent", "message": "The consent is no longer verified."}
            )
        ready = result.passed and consent_ok
        # The fine-tune's held-out evaluation is this version's validation: the same sanity,
        # WER, MOS and similarity checks, run on a worker against the talent.
        model_version = rollout.register(
            spec,
            artefact_key=key,
            status=rollout.ModelVersion.Status.VALIDATED
            if ready
            else rollout.ModelVersion.Status.REJECTED,
            family=voice_family(voice.pk),
            tenant=tenant,
            semver=f"{number}.0.0",
            registered_by="fine-tune",
            validation={
                "source": "fine-tune",
                "metrics": result.metrics,
                "thresholds": result.model.stats.get("gates", {}),
                "reasons": gate_failures,
            },
        )
        version = VoiceVersion.objects.for_tenant(tenant).create(
            tenant=tenant,
            voice=voice,
            number=number,
            status=VoiceVersion.Status.READY if ready else VoiceVersion.Status.FAILED,
            model_version=model_version,
            artefact_key=key,
            artefact_sha256=checksum,
            artefact_bytes=len(data),
            metrics=result.metrics,
            gate_failures=gate_failures,
            train_recordings=n_train,
            held_out_recordings=n_held,
        )
        if not _end(job, FineTuneJob.Status.SUCCEEDED, version=version, percent=100.0):
            # Cancelled while we stored: the version stays as failed history, nothing goes live.
            VoiceVersion.objects.for_tenant(tenant).filter(pk=version.pk).update(
                status=VoiceVersion.Status.FAILED
            )
            return
        voices = Voice.objects.for_tenant(tenant).filter(pk=voice.pk)
        serving = voices.exclude(status=Voice.Status.DISABLED).filter(active_version__isnull=False)
        rollout_id = None
        if ready and serving.exists():
            # A voice that already serves is not switched over: the new version ramps up
            # against the active one, judged on its traffic.
            rollout_id = _start_rollout(model_version)
        elif ready:
            voices.exclude(status=Voice.Status.DISABLED).update(
                status=Voice.Status.READY, active_version=version, model_version=model_version
            )
        else:
            voices.filter(status=Voice.Status.TRAINING).update(status=Voice.Status.FAILED)
        audit.record(
            "fine_tune.finish",
            tenant=tenant,
            actor=Actor.system("fine-tune worker"),
            target=version,
            after={"status": version.status, "number": number, "gate_failures": gate_failures,
                   "checksum": checksum, "rollout": rollout_id},
        )  # fmt: skip


def _start_rollout(model_version) -> str | None:
    from rollout.services import lifecycle
    from rollout.services.authority import Authority

    try:
        with transaction.atomic():
            started = lifecycle.start(Authority.system("fine-tune"), model_version)
    except ApiError as exc:  # e.g. a rollout of this voice is still running
        logger.warning("no rollout of %s: %s", model_version.pk, exc.message)
        return None
    return str(started.pk)


def fail_stuck() -> int:
    """Housekeeping: end fine-tunes whose worker vanished without a redelivery."""
    from datetime import timedelta

    limit = timezone.now() - timedelta(seconds=settings.FINE_TUNE_TIME_LIMIT_S * 2)
    stuck = FineTuneJob.dangerously_unscoped.select_related("reservation").filter(
        status=FineTuneJob.Status.RUNNING, started_at__lt=limit
    )
    return sum(
        _end(job, FineTuneJob.Status.FAILED, "worker_lost", "The fine-tune did not finish in time.")
        for job in stuck
    )
