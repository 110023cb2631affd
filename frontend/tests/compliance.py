"""Data for the consent, audit and trace pages: consents verified through the consent
services (statement, stored recording, evidence written by the same settle step as a real
verification, so the evidence has its real shape), and genuinely watermarked clips."""

from __future__ import annotations

import hashlib

import numpy as np
from django.utils import timezone

from audit.services import Actor, RequestContext
from consent import services
from consent.models import ConsentRecord
from core.storage import get_storage, tenant_key
from speech import audio
from speech.consent import Check, ConsentReport
from synthesis import watermarking
from tenancy.services.access import Access
from voices.models import TrainingRecording, Voice

SR = 22050
CONTEXT = RequestContext(actor=Actor("user", "", "brand@example.com"))


def tone(seconds: float = 2.0, seed: int = 1) -> np.ndarray:
    """A voiced-sounding test signal (no model needed)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(SR * seconds)) / SR
    x = 0.1 * np.sin(2 * np.pi * 180 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
    return (x + 0.02 * rng.standard_normal(len(t))).astype(np.float32)


def consent_with_evidence(
    tenant,
    *,
    slug: str = "dana",
    name: str = "Dana Fischer",
    recordings: int = 3,
    recording: bytes | None = None,
    valid_until=None,
    scores=(0.81, 0.77, 0.84),
) -> ConsentRecord:
    """A talent, their custom voice with accepted recordings, and a verified consent whose
    statement recording is in object storage."""
    access = Access.operator(tenant)
    talent = services.create_talent(access, name=name, context=CONTEXT)
    voice = Voice.objects.for_tenant(tenant).create(
        tenant=tenant, slug=slug, name=name, kind=Voice.Kind.CUSTOM, talent=talent
    )
    rows = TrainingRecording.objects.for_tenant(tenant).bulk_create(
        TrainingRecording(
            tenant=tenant,
            voice=voice,
            filename=f"take-{i + 1:02d}.wav",
            transcript="t",
            status=TrainingRecording.Status.ACCEPTED,
        )
        for i in range(recordings)
    )
    consent = services.request_statement(
        access, talent=talent, voice=voice, valid_until=valid_until, context=CONTEXT
    )
    data = recording if recording is not None else audio.encode(tone(), SR, "wav")
    key = tenant_key(tenant.pk, "consent", f"{consent.pk}.audio")
    get_storage().put(key, data)
    sha = hashlib.sha256(data).hexdigest()
    ConsentRecord.objects.for_tenant(tenant).filter(pk=consent.pk).update(
        status=ConsentRecord.Status.VERIFYING,
        recording_key=key,
        recording_sha256=sha,
        recording_bytes=len(data),
        recorded_at=timezone.now(),
    )
    consent.refresh_from_db()
    singles = list(scores[:recordings]) + [0.8] * max(0, recordings - len(scores))
    checks = [
        Check("decode", True, "ok", "Decoded 6.1 s of audio at 22050 Hz."),
        Check("statement", True, "ok", "The statement matches (word error rate 4%).",
              score=0.04, threshold=0.25),
        Check("challenge", True, "ok", f'Heard "{consent.challenge}".', score=1.0,
              details={"expected": consent.challenge, "matched": consent.challenge}),
        Check("speaker", True, "ok", "The voice matches the training recordings (similarity "
              "0.81).", score=0.81, threshold=0.6),
        Check("training_speakers", True, "ok", f"All {recordings} training recordings match "
              "the consent voice.", score=min(singles), threshold=0.5,
              details={"scores": singles, "indices": []}),
    ]  # fmt: skip
    report = ConsentReport(
        passed=True,
        checks=checks,
        transcript=consent.statement,
        audio_sha256=sha,
        duration_s=6.1,
        embedding=np.ones(8, dtype=np.float32),
        evidence={
            "scores": {"statement_wer": 0.04, "speaker": 0.81, "training_single": singles},
            "thresholds": {"max_statement_wer": 0.25, "speaker": 0.6},
            "models": {"asr": "whisper-base.en", "speaker": "ecapa-tdnn"},
        },
    )
    # The step a verification worker ends with: status, evidence, audit event, voice attached.
    return services._settle(consent, report, rows)


def watermarked_clip(tenant, make_job, **job_fields) -> tuple[bytes, object]:
    """A clip marked for a synthesis request of `tenant`, as the pipeline marks it."""
    job = make_job(tenant, **job_fields)
    marked = watermarking.watermark_clip(job, tone(3.0, seed=7), SR)
    job.save(update_fields=["watermark_backend", "watermark_key_id", "watermark_payload"])
    return audio.encode(marked, SR, "wav"), job
