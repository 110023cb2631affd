"""Training recordings: uploads (single files or a zip with metadata.csv), their checks on the
`cpu` queue, and the dataset report.

An upload is stored as it came and queued; the check decodes it (never trusting a name or an
extension), measures it, compares it with the transcript (ASR) and the consent's speaker, and
keeps the accepted audio trimmed and loudness-normalised as WAV. Storage counts against the
plan atomically when bytes are written and is given back when they are deleted.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit import services as audit
from audit.services import RequestContext
from consent.models import ConsentRecord
from core.errors import ApiError, Conflict
from core.queueing import enqueue
from core.scoping import tenant_context
from core.storage import get_storage, tenant_key
from speech import audio as speech_audio
from speech import datasets as speech_datasets
from tenancy.roles import Scope
from tenancy.services import quotas
from tenancy.services.access import Access
from voices.models import TrainingRecording, Voice

logger = logging.getLogger(__name__)

CHECK_TASK = "voices.tasks.check_recordings"


class InvalidUpload(ApiError):
    default_code = "invalid_upload"


def zip_limits() -> speech_datasets.ZipLimits:
    return speech_datasets.ZipLimits(
        max_members=settings.DATASET_ZIP_MAX_MEMBERS,
        max_member_bytes=settings.TRAINING_MAX_RECORDING_BYTES,
        max_total_bytes=settings.DATASET_ZIP_MAX_TOTAL_BYTES,
        max_ratio=settings.DATASET_ZIP_MAX_RATIO,
        max_archive_bytes=settings.DATASET_MAX_UPLOAD_BYTES,
    )


def recording_limits() -> speech_datasets.RecordingLimits:
    return speech_datasets.RecordingLimits(max_bytes=settings.TRAINING_MAX_RECORDING_BYTES)


def _require_open(voice: Voice) -> None:
    if voice.kind != Voice.Kind.CUSTOM:
        raise InvalidUpload("Training recordings belong to custom voices.", code="stock_voice")
    if voice.status == Voice.Status.DISABLED:
        raise Conflict("The voice is disabled.", code="voice_disabled")


def _store_uploads(
    access: Access, voice: Voice, items: list[tuple[str, bytes, str]], context, rejected=()
) -> list[TrainingRecording]:
    """Create the rows, store the bytes, queue one check for the batch (in order, so
    duplicates within a batch are found). Archive entries that could not be read at all
    (`rejected`) are recorded as rejected files with their reason."""
    tenant = access.tenant
    total = sum(len(data) for _, data, _ in items)
    storage = get_storage()
    with transaction.atomic():
        quotas.take(tenant, quotas.STORAGE_BYTES, total)
        rows = []
        for filename, data, transcript in items:
            rec = TrainingRecording(
                tenant=tenant,
                voice=voice,
                filename=filename[:255],
                transcript=transcript,
                upload_bytes=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
            )
            rec.upload_key = tenant_key(tenant.pk, "voices", str(voice.pk), "uploads", str(rec.pk))
            rows.append(rec)
        failed = [
            TrainingRecording(
                tenant=tenant,
                voice=voice,
                filename=item.name[:255],
                transcript=item.transcript,
                status=TrainingRecording.Status.REJECTED,
                problems=[item.problem],
                checked_at=timezone.now(),
            )
            for item in rejected
        ]
        TrainingRecording.objects.for_tenant(tenant).bulk_create(rows + failed)
        for rec, (_, data, _) in zip(rows, items, strict=True):
            storage.put(rec.upload_key, data)
        audit.record(
            "voice.recordings_upload",
            tenant=tenant,
            context=context,
            target=voice,
            after={"files": [r.filename for r in rows + failed], "bytes": total},
        )
        ids = [str(r.pk) for r in rows]
        if ids:
            transaction.on_commit(lambda: enqueue(CHECK_TASK, ids))
    return rows + failed


def upload_recording(
    access: Access,
    voice: Voice,
    *,
    data: bytes,
    filename: str,
    transcript: str,
    context: RequestContext | None = None,
) -> list[TrainingRecording]:
    access.require(Scope.VOICES_WRITE)
    _require_open(voice)
    transcript = (transcript or "").strip()
    if not transcript:
        raise InvalidUpload("Each recording needs its transcript.", code="empty_transcript")
    if len(data) > settings.TRAINING_MAX_RECORDING_BYTES:
        raise InvalidUpload(
            f"The recording is larger than {settings.TRAINING_MAX_RECORDING_BYTES} bytes.",
            code="file_too_large",
            status_code=413,
        )
    if not data:
        raise InvalidUpload("The file is empty.", code="empty_upload")
    return _store_uploads(access, voice, [(filename or "recording", data, transcript)], context)


ZIP_MAGIC = b"PK\x03\x04"


def upload_file(
    access: Access,
    voice: Voice,
    *,
    data: bytes,
    filename: str,
    transcript: str = "",
    context: RequestContext | None = None,
) -> list[TrainingRecording]:
    """One uploaded file: a zip with metadata.csv (by its content, never its name) or a single
    recording with its transcript."""
    if data[:4] == ZIP_MAGIC:
        return upload_archive(access, voice, data=data, context=context)
    return upload_recording(
        access, voice, data=data, filename=filename, transcript=transcript, context=context
    )


def upload_archive(
    access: Access, voice: Voice, *, data: bytes, context: RequestContext | None = None
) -> list[TrainingRecording]:
    """A zip with metadata.csv (file, transcript). Refused whole when unsafe (a zip bomb, path
    traversal, too many members, no metadata); files listed but absent are reported per file."""
    access.require(Scope.VOICES_WRITE)
    _require_open(voice)
    if len(data) > settings.DATASET_MAX_UPLOAD_BYTES:
        raise InvalidUpload(
            f"The archive is larger than {settings.DATASET_MAX_UPLOAD_BYTES} bytes.",
            code="file_too_large",
            status_code=413,
        )
    try:
        items = speech_datasets.read_archive(data, zip_limits())
    except speech_datasets.DatasetError as exc:
        raise InvalidUpload(exc.message, code=exc.code) from exc
    if not items:
        raise InvalidUpload("The archive lists no recordings.", code="bad_metadata")
    return _store_uploads(
        access,
        voice,
        [(item.name, item.data, item.transcript) for item in items if item.problem is None],
        context,
        rejected=[item for item in items if item.problem is not None],
    )


# --- the check (cpu task) ------------------------------------------------------------------
def _consent_embedding(voice: Voice):
    consent = voice.consent
    if consent is None or consent.status != ConsentRecord.Status.VERIFIED or not consent.embedding:
        return None
    return np.asarray(consent.embedding, dtype=np.float32)


def check_recordings(recording_ids: list[str]) -> None:
    """Check each recording in order. Idempotent: only `processing` rows are checked."""
    for rec_id in recording_ids:
        rec = (
            TrainingRecording.dangerously_unscoped.select_related("tenant", "voice__consent")
            .filter(pk=rec_id, status=TrainingRecording.Status.PROCESSING)
            .first()
        )
        if rec is None:
            continue
        with tenant_context(rec.tenant):
            try:
                _check_one(rec)
            except ApiError as exc:  # e.g. the plan's storage is full
                _settle(rec, None, [{"code": exc.error_code, "message": exc.message}])
            except Exception:
                logger.exception("training recording %s could not be checked", rec.pk)
                _settle(rec, None, [{"code": "check_failed",
                                     "message": "The recording could not be checked; upload it "
                                     "again."}])  # fmt: skip


def _check_one(rec: TrainingRecording) -> None:
    voice = rec.voice
    accepted = TrainingRecording.objects.for_tenant(rec.tenant).filter(
        voice=voice, status=TrainingRecording.Status.ACCEPTED
    )
    seen, embeddings = set(), []
    for sha, content, embedding in accepted.values_list("sha256", "content_sha256", "embedding"):
        seen.update(h for h in (sha, content) if h)
        if embedding:
            embeddings.append(np.asarray(embedding, dtype=np.float32))
    data = get_storage().get(rec.upload_key)
    check = speech_datasets.check_recording(
        data,
        rec.transcript,
        limits=recording_limits(),
        consent_embedding=_consent_embedding(voice),
        seen_hashes=seen,
        seen_embeddings=embeddings,
        asr_threads=settings.TIMBRE_ASR_THREADS,
    )
    _settle(rec, check, check.problems)


def _settle(rec: TrainingRecording, check, problems: list[dict]) -> None:
    tenant = rec.tenant
    storage = get_storage()
    fields = {"problems": list(problems), "checked_at": timezone.now(), "upload_key": ""}
    new_bytes = 0
    if check is not None:
        fields.update(
            content_sha256=check.content_sha256 or "",
            duration_s=float(check.duration_s or 0),
            sample_rate=int(check.sample_rate or 0),
            asr_transcript=check.asr_transcript or "",
            wer=check.wer,
            speaker_score=check.speaker_score,
            quality=check.assessment or {},
            embedding=check.embedding.tolist() if check.embedding is not None else None,
        )
    if check is not None and check.ok:
        wav = speech_audio.encode(check.audio, check.sr, "wav")
        key = tenant_key(tenant.pk, "voices", str(rec.voice_id), "recordings", f"{rec.pk}.wav")
        storage.put(key, wav, "audio/wav")
        new_bytes = len(wav)
        fields.update(
            status=TrainingRecording.Status.ACCEPTED, audio_key=key, audio_bytes=new_bytes
        )
    else:
        fields.update(status=TrainingRecording.Status.REJECTED)
    try:
        with transaction.atomic():
            moved = (
                TrainingRecording.objects.for_tenant(tenant)
                .filter(pk=rec.pk, status=TrainingRecording.Status.PROCESSING)
                .update(**fields)
            )
            if moved:
                # The upload is replaced by the processed audio (or nothing).
                quotas.release(tenant, quotas.STORAGE_BYTES, rec.upload_bytes)
                if new_bytes:
                    quotas.take(tenant, quotas.STORAGE_BYTES, new_bytes)
    except ApiError:
        if new_bytes:
            storage.delete(fields["audio_key"])
        raise
    if not moved and new_bytes:  # deleted meanwhile
        storage.delete(fields["audio_key"])
    if moved and rec.upload_key:
        storage.delete(rec.upload_key)


def delete_recording(
    access: Access, rec: TrainingRecording, *, context: RequestContext | None = None
) -> None:
    access.require(Scope.VOICES_WRITE)
    tenant = access.tenant
    keys = [k for k in (rec.upload_key, rec.audio_key) if k]
    with transaction.atomic():
        audit.record(
            "voice.recording_delete", tenant=tenant, context=context, target=rec,
            before={"filename": rec.filename, "status": rec.status},
        )  # fmt: skip
        TrainingRecording.objects.for_tenant(tenant).filter(pk=rec.pk).delete()
        quotas.release(tenant, quotas.STORAGE_BYTES, rec.upload_bytes if rec.upload_key else 0)
        quotas.release(tenant, quotas.STORAGE_BYTES, rec.audio_bytes)
    for key in keys:
        get_storage().delete(key)


# --- the report ----------------------------------------------------------------------------------
def dataset_report(voice: Voice) -> dict:
    rows = list(TrainingRecording.objects.for_tenant(voice.tenant_id).filter(voice=voice))
    by_status = Counter(r.status for r in rows)
    problems = Counter(p.get("code") for r in rows for p in (r.problems or []))
    accepted = [r for r in rows if r.status == TrainingRecording.Status.ACCEPTED]
    minimum = settings.FINE_TUNE_MIN_RECORDINGS
    consent = voice.consent  # the verified consent the voice relies on, if any
    return {
        "voice": voice.slug,
        "totals": {
            "files": len(rows),
            "accepted": by_status.get(TrainingRecording.Status.ACCEPTED, 0),
            "rejected": by_status.get(TrainingRecording.Status.REJECTED, 0),
            "processing": by_status.get(TrainingRecording.Status.PROCESSING, 0),
            "accepted_seconds": round(sum(r.duration_s for r in accepted), 2),
        },
        "problems": dict(sorted(problems.items())),
        "ready_for_fine_tune": len(accepted) >= minimum
        and consent is not None
        and consent.status == ConsentRecord.Status.VERIFIED,
        "min_recordings": minimum,
        "consent": {"id": str(consent.pk), "status": consent.status} if consent else None,
        "files": [
            {
                "id": str(r.pk),
                "filename": r.filename,
                "status": r.status,
                "problems": r.problems,
                "duration_s": r.duration_s,
                "wer": r.wer,
                "speaker_score": r.speaker_score,
            }
            for r in rows
        ],
    }
