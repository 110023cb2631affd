"""Consent: talents, statements, verification, override, revocation and expiry.

Every path (API, console, management commands, tasks) goes through these functions; each
takes the caller's `Access` and checks it here. State changes are conditional updates, so two
racing calls cannot both move a consent, and each writes its audit event in the same
transaction.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import timedelta
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit import services as audit
from audit.services import Actor, RequestContext
from consent.models import ConsentEvidence, ConsentRecord, StatementTemplate, VoiceTalent
from core.errors import ApiError, Conflict, NotFound
from core.queueing import enqueue
from core.scoping import tenant_context
from core.storage import get_storage, tenant_key
from speech import audio
from speech import consent as speech_consent
from tenancy.roles import Scope
from tenancy.services import quotas
from tenancy.services.access import Access
from voices.models import TrainingRecording, Voice

logger = logging.getLogger(__name__)

VERIFY_TASK = "consent.tasks.verify_consent"
ACTIVE_OR_PENDING = (
    ConsentRecord.Status.PENDING,
    ConsentRecord.Status.VERIFYING,
    ConsentRecord.Status.VERIFIED,
    ConsentRecord.Status.REJECTED,
)


class InvalidConsentRequest(ApiError):
    default_code = "invalid_request"


class ConsentStateError(Conflict):
    default_code = "invalid_consent_state"


def _actor_label(access: Access, context: RequestContext | None) -> str:
    if context is not None and context.actor.label:
        return context.actor.label
    return access.role


def _snapshot(consent: ConsentRecord) -> dict:
    return {"status": consent.status, "reasons": consent.reasons, "talent": str(consent.talent_id)}


# --- talents --------------------------------------------------------------------------------
TALENT_FIELDS = ("name", "email", "phone", "notes", "languages")


def create_talent(
    access: Access, *, context: RequestContext | None = None, **fields
) -> VoiceTalent:
    access.require(Scope.CONSENT_WRITE)
    values = {k: v for k, v in fields.items() if k in TALENT_FIELDS}
    with transaction.atomic():
        talent = VoiceTalent.objects.for_tenant(access.tenant).create(
            tenant=access.tenant, **values
        )
        audit.record(
            "talent.create", tenant=access.tenant, context=context, target=talent,
            after=_talent_audit(talent, values),
        )  # fmt: skip
    return talent


def update_talent(
    access: Access, talent: VoiceTalent, *, context: RequestContext | None = None, **fields
) -> VoiceTalent:
    access.require(Scope.CONSENT_WRITE)
    changes = {k: v for k, v in fields.items() if k in TALENT_FIELDS}
    with transaction.atomic():
        for name, value in changes.items():
            setattr(talent, name, value)
        talent.save(update_fields=list(changes) or None)
        audit.record(
            "talent.update",
            tenant=access.tenant,
            context=context,
            target=talent,
            after=_talent_audit(talent, changes),
        )
    return talent


def _talent_audit(talent: VoiceTalent, changed: dict) -> dict:
    # The audit log is append-only: it names what changed but keeps no contact details.
    return {"name": talent.name, "fields": sorted(changed)}


# --- statements -------------------------------------------------------------------------------
TEMPLATES_FILE = Path(__file__).with_name("data") / "statement_templates.json"


def ensure_statement_templates() -> None:
    """Idempotent (run after migrate): the shipped templates, never overwriting edited ones."""
    for entry in json.loads(TEMPLATES_FILE.read_text()):
        StatementTemplate.objects.get_or_create(
            language=entry["language"], version=entry["version"], defaults=entry
        )


def template_for(language: str) -> StatementTemplate:
    template = (
        StatementTemplate.objects.filter(language=language, active=True)
        .order_by("-version")
        .first()
    )
    if template is None:
        languages = sorted(
            set(StatementTemplate.objects.filter(active=True).values_list("language", flat=True))
        )
        raise InvalidConsentRequest(
            f"No consent statement template for language {language!r}.",
            code="unsupported_language",
            details={"allowed": languages},
        )
    return template


def request_statement(
    access: Access,
    *,
    talent: VoiceTalent,
    voice: Voice,
    language: str | None = None,
    valid_until=None,
    context: RequestContext | None = None,
) -> ConsentRecord:
    """Issue a fresh statement (new random challenge, limited validity) for talent + voice."""
    access.require(Scope.CONSENT_WRITE)
    if voice.talent_id != talent.pk:
        raise InvalidConsentRequest(
            "The voice belongs to another talent; a consent names the talent whose voice it is.",
            code="talent_mismatch",
        )
    language = language or voice.language
    template = template_for(language)
    now = timezone.now()
    if valid_until is not None and valid_until <= now:
        raise InvalidConsentRequest("valid_until must be in the future.", code="invalid_expiry")
    challenge = speech_consent.make_challenge()
    company = access.tenant.company_name
    statement = speech_consent.render_statement(
        template.text,
        talent=talent.name,
        company=company,
        purpose=template.purpose,
        challenge=challenge,
        date=now.date().isoformat(),
    )
    with transaction.atomic():
        consent = ConsentRecord.objects.for_tenant(access.tenant).create(
            tenant=access.tenant,
            talent=talent,
            voice=voice,
            language=language,
            template_version=template.version,
            company=company,
            purpose=template.purpose,
            challenge=challenge,
            statement=statement,
            created_by=_actor_label(access, context),
            statement_expires_at=now + timedelta(seconds=settings.CONSENT_STATEMENT_TTL_S),
            valid_until=valid_until,
        )
        audit.record(
            "consent.request",
            tenant=access.tenant,
            context=context,
            target=consent,
            after={"talent": str(talent.pk), "voice": voice.slug, "language": language},
        )
    return consent


# --- the recording and its verification --------------------------------------------------------
def submit_recording(
    access: Access, consent: ConsentRecord, data: bytes, *, context: RequestContext | None = None
) -> ConsentRecord:
    """Store the talent's recording of the statement and queue its verification (`cpu`).

    A recording that arrives after the statement expired is rejected on the spot, with
    evidence, so an old recording cannot be replayed against a new challenge."""
    access.require(Scope.CONSENT_WRITE)
    if consent.status != ConsentRecord.Status.PENDING:
        raise ConsentStateError(
            f"This consent is {consent.status}; a recording can only be added to a pending "
            "statement. Request a new statement to record again."
        )
    if len(data) > settings.CONSENT_MAX_RECORDING_BYTES:
        raise InvalidConsentRequest(
            f"The recording is larger than {settings.CONSENT_MAX_RECORDING_BYTES} bytes.",
            code="file_too_large",
            status_code=413,
        )
    if not data:
        raise InvalidConsentRequest("The recording is empty.", code="empty_upload")
    if not audio.looks_like_audio(data):
        # Refused before it is stored or charged; audio that only fails to decode later is
        # rejected by verification, with evidence.
        raise InvalidConsentRequest(
            "The recording is not an audio file Timbre can read (WAV, FLAC, MP3, OGG/Opus, "
            "WebM or M4A).",
            code="unsupported_audio_format",
            status_code=415,
        )
    now = timezone.now()
    sha = hashlib.sha256(data).hexdigest()
    if now > consent.statement_expires_at:
        _reject_expired_statement(access, consent, sha, context)
        raise InvalidConsentRequest(
            "The statement expired before it was recorded. Request a new statement and record "
            "it before it expires.",
            code="statement_expired",
            status_code=409,
        )
    minimum = settings.CONSENT_MIN_TRAINING_RECORDINGS
    accepted = _accepted_recordings(consent).count()
    if accepted < minimum:
        raise ConsentStateError(
            f"Upload at least {minimum} accepted training recordings for the voice before the "
            f"consent recording (it has {accepted}): the consent is checked against them.",
            code="training_audio_required",
        )
    tenant = access.tenant
    key = tenant_key(tenant.pk, "consent", f"{consent.pk}.audio")
    with transaction.atomic():
        # Charged in the same transaction as the state change: a lost race charges nothing.
        quotas.take(tenant, quotas.STORAGE_BYTES, len(data))
        get_storage().put(key, data, "application/octet-stream")
        moved = (
            ConsentRecord.objects.for_tenant(tenant)
            .filter(pk=consent.pk, status=ConsentRecord.Status.PENDING)
            .update(
                status=ConsentRecord.Status.VERIFYING,
                recording_key=key,
                recording_sha256=sha,
                recording_bytes=len(data),
                recorded_at=now,
            )
        )
        if not moved:
            raise ConsentStateError("This consent was changed meanwhile; reload it.")
        consent.refresh_from_db()
        audit.record(
            "consent.record",
            tenant=tenant,
            context=context,
            target=consent,
            after={"audio_sha256": sha, "bytes": len(data)},
        )
        transaction.on_commit(lambda: enqueue(VERIFY_TASK, str(consent.pk)))
    return consent


def _reject_expired_statement(access, consent, sha: str, context) -> None:
    reason = {
        "code": "statement_expired",
        "message": "The statement expired before it was recorded. Request a new statement.",
    }
    with transaction.atomic():
        moved = (
            ConsentRecord.objects.for_tenant(access.tenant)
            .filter(pk=consent.pk, status=ConsentRecord.Status.PENDING)
            .update(status=ConsentRecord.Status.REJECTED, reasons=[reason])
        )
        if not moved:
            return
        ConsentEvidence.objects.for_tenant(access.tenant).create(
            tenant=access.tenant,
            consent=consent,
            passed=False,
            audio_sha256=sha,
            checks=[{"name": "statement_valid", "passed": False, **reason}],
            thresholds={"statement_expires_at": consent.statement_expires_at.isoformat()},
            details={"recorded_at": timezone.now().isoformat()},
        )
        audit.record(
            "consent.reject", tenant=access.tenant, context=context, target=consent,
            after={"reasons": [reason]},
        )  # fmt: skip


def _accepted_recordings(consent: ConsentRecord):
    return TrainingRecording.objects.for_tenant(consent.tenant_id).filter(
        voice_id=consent.voice_id, status=TrainingRecording.Status.ACCEPTED
    )


def _other_talents(consent: ConsentRecord) -> dict[str, np.ndarray]:
    """Mean consent embeddings of the tenant's other talents (a voice enrolled twice under two
    names is flagged). Ended consents count too: revoking and re-enrolling is the same fraud."""
    rows = (
        ConsentRecord.objects.for_tenant(consent.tenant_id)
        .exclude(talent_id=consent.talent_id)
        .exclude(embedding=None)
        .values_list("talent_id", "embedding")
    )
    by_talent: dict[str, list] = {}
    for talent_id, embedding in rows:
        by_talent.setdefault(str(talent_id), []).append(np.asarray(embedding, dtype=np.float32))
    from speech import speaker

    return {talent: speaker.mean_embedding(embs) for talent, embs in by_talent.items()}


def _watermark_detector(samples: np.ndarray, sr: int) -> bool:
    from synthesis.watermarking import detect_samples

    _, detection = detect_samples(samples, sr)
    return detection.verdict == "watermarked"


def verify(consent_id: str) -> ConsentRecord | None:
    """The `cpu` task's body: run every check, store the evidence, settle the consent."""
    consent = (
        ConsentRecord.dangerously_unscoped.select_related("tenant", "talent")
        .filter(pk=consent_id)
        .first()
    )
    if consent is None or consent.status != ConsentRecord.Status.VERIFYING:
        return consent  # idempotent: already settled (or revoked meanwhile)
    tenant = consent.tenant
    with tenant_context(tenant):
        recordings = list(_accepted_recordings(consent).exclude(embedding=None))
        data = get_storage().get(consent.recording_key)
        from voices.services import stock_embedding

        report = speech_consent.verify_consent(
            data,
            statement=consent.statement,
            talent_name=consent.talent.name,
            company=consent.company,
            challenge=consent.challenge,
            training_embeddings=[np.asarray(r.embedding, dtype=np.float32) for r in recordings],
            other_talents=_other_talents(consent),
            stock_embedding=stock_embedding(),
            watermark_detector=_watermark_detector,
            max_bytes=settings.CONSENT_MAX_RECORDING_BYTES,
            asr_threads=settings.TIMBRE_ASR_THREADS,
        )
        return _settle(consent, report, recordings)


def _settle(consent: ConsentRecord, report, recordings) -> ConsentRecord:
    tenant = consent.tenant
    result = report.to_dict()
    status = ConsentRecord.Status.VERIFIED if report.passed else ConsentRecord.Status.REJECTED
    embedding = report.embedding.tolist() if report.embedding is not None else None
    with transaction.atomic():
        moved = (
            ConsentRecord.objects.for_tenant(tenant)
            .filter(pk=consent.pk, status=ConsentRecord.Status.VERIFYING)
            .update(
                status=status,
                reasons=list(report.reasons),
                embedding=embedding,
                verified_at=timezone.now() if report.passed else None,
            )
        )
        if not moved:
            return consent
        if report.passed:
            _attach(consent)
        ConsentEvidence.objects.for_tenant(tenant).create(
            tenant=tenant,
            consent=consent,
            passed=report.passed,
            audio_sha256=report.audio_sha256,
            transcript=report.transcript,
            checks=result.get("checks", []),
            thresholds=result.get("evidence", {}).get("thresholds", {}),
            model_versions=result.get("evidence", {}).get("models", {}),
            details={
                **{k: v for k, v in result.items() if k not in ("checks", "transcript")},
                "training_recordings": [str(r.pk) for r in recordings],
            },
        )
        consent.refresh_from_db()
        audit.record(
            "consent.verify" if report.passed else "consent.reject",
            tenant=tenant,
            actor=Actor.system("consent verification"),
            target=consent,
            after={"status": status, "reasons": consent.reasons},
        )
    return consent


def _attach(consent: ConsentRecord) -> None:
    """A verified consent becomes the one its voice relies on. Until then the voice keeps the
    consent it had, so asking a talent for a fresh statement never breaks a working voice."""
    Voice.objects.for_tenant(consent.tenant_id).filter(pk=consent.voice_id).update(consent=consent)


def fail_verification(consent_id: str, message: str) -> None:
    """The verification task crashed or timed out: the consent is rejected with a reason a
    person can act on (record again), never left `verifying`."""
    consent = ConsentRecord.dangerously_unscoped.filter(pk=consent_id).first()
    if consent is None:
        return
    reason = {"code": "verification_failed", "message": message}
    with transaction.atomic():
        moved = ConsentRecord.dangerously_unscoped.filter(
            pk=consent_id, status=ConsentRecord.Status.VERIFYING
        ).update(status=ConsentRecord.Status.REJECTED, reasons=[reason])
        if moved:
            audit.record(
                "consent.reject",
                tenant=consent.tenant,
                actor=Actor.system("consent verification"),
                target=consent,
                after={"reasons": [reason]},
            )


# --- override ----------------------------------------------------------------------------------
UNOVERRIDABLE = {"watermarked", "statement_expired", "undecodable"}


def override(
    access: Access, consent: ConsentRecord, reason: str, *, context: RequestContext | None = None
) -> ConsentRecord:
    """An admin accepts a rejected consent, with a written reason; audited, with evidence.

    Audio carrying our own watermark, an expired statement and undecodable audio cannot be
    overridden: nothing a person writes makes them the talent's consent."""
    access.require(Scope.CONSENT_WRITE)
    access.require(Scope.ADMIN)
    reason = (reason or "").strip()
    if len(reason) < 10:
        raise InvalidConsentRequest(
            "An override needs a written reason (at least 10 characters).", code="reason_required"
        )
    if consent.status != ConsentRecord.Status.REJECTED:
        raise ConsentStateError(
            f"Only a rejected consent can be overridden; this is {consent.status}."
        )
    blocking = sorted({r.get("code") for r in consent.reasons} & UNOVERRIDABLE)
    if blocking:
        raise ConsentStateError(
            f"This rejection cannot be overridden ({', '.join(blocking)}). Request a new "
            "statement and record it again.",
            code="override_not_allowed",
        )
    tenant = access.tenant
    label = _actor_label(access, context)
    before = _snapshot(consent)
    with transaction.atomic():
        moved = (
            ConsentRecord.objects.for_tenant(tenant)
            .filter(pk=consent.pk, status=ConsentRecord.Status.REJECTED)
            .update(
                status=ConsentRecord.Status.VERIFIED,
                override_reason=reason,
                overridden_by=label,
                overridden_at=timezone.now(),
                verified_at=timezone.now(),
            )
        )
        if not moved:
            raise ConsentStateError("This consent was changed meanwhile; reload it.")
        _attach(consent)
        ConsentEvidence.objects.for_tenant(tenant).create(
            tenant=tenant,
            consent=consent,
            kind="override",
            passed=True,
            audio_sha256=consent.recording_sha256,
            checks=consent.reasons,
            details={"reason": reason, "by": label},
        )
        consent.refresh_from_db()
        audit.record(
            "consent.override",
            tenant=tenant,
            context=context,
            target=consent,
            before=before,
            after={**_snapshot(consent), "override_reason": reason},
        )
    return consent


# --- revocation and expiry -----------------------------------------------------------------------
def revoke(
    access: Access,
    consent: ConsentRecord,
    reason: str = "",
    *,
    context: RequestContext | None = None,
) -> ConsentRecord:
    """Revoke at once (the tenant, or an operator at the talent's request), with a written
    reason: it is what the audit log and the evidence export tell an auditor later."""
    access.require(Scope.CONSENT_WRITE)
    if consent.status in ConsentRecord.ENDED:
        raise ConsentStateError(f"This consent is already {consent.status}.")
    reason = (reason or "").strip()
    if not reason:
        raise InvalidConsentRequest(
            "A revocation needs a written reason (for example: the talent's request by email).",
            code="reason_required",
        )
    return _end(
        consent,
        ConsentRecord.Status.REVOKED,
        reason=reason,
        by=_actor_label(access, context),
        context=context,
    )


def expire_due(now=None) -> int:
    """Housekeeping (beat): consents past `valid_until` end like a revocation."""
    now = now or timezone.now()
    due = ConsentRecord.dangerously_unscoped.select_related("tenant").filter(
        status__in=ACTIVE_OR_PENDING, valid_until__lte=now
    )
    count = 0
    for consent in due:
        with tenant_context(consent.tenant):
            _end(consent, ConsentRecord.Status.EXPIRED, reason="The consent's validity ended.",
                 by="system")  # fmt: skip
        count += 1
    return count


def _end(consent: ConsentRecord, status: str, *, reason: str, by: str, context=None):
    """Revoked or expired: voices disabled, fine-tunes and syntheses cancelled, artefacts
    scheduled for deletion; all in one transaction with its audit event."""
    from synthesis.services import pipeline, prompt_cache
    from voices import services as voices

    tenant = consent.tenant
    now = timezone.now()
    code = "consent_revoked"
    with transaction.atomic():
        moved = (
            ConsentRecord.objects.for_tenant(tenant)
            .filter(pk=consent.pk, status__in=ACTIVE_OR_PENDING)
            .update(
                status=status,
                ended_at=now,
                ended_by=by[:200],
                end_reason=reason,
                artefacts_delete_after=now
                + timedelta(seconds=settings.CONSENT_ARTEFACT_RETENTION_S),
            )
        )
        if not moved:
            raise ConsentStateError("This consent was changed meanwhile; reload it.")
        voice_ids = voices.disable_for_consent(tenant, consent, reason=code)
        cancelled_fine_tunes = voices.cancel_fine_tunes(tenant, voice_ids, code, reason)
        cancelled_syntheses = pipeline.cancel_for_voices(
            tenant, voice_ids, code, "The voice's consent was revoked."
        )
        for voice_id in voice_ids:  # nothing made before is delivered again
            prompt_cache.forget_voice(voice_id)
        consent.refresh_from_db()
        audit.record(
            f"consent.{'revoke' if status == ConsentRecord.Status.REVOKED else 'expire'}",
            tenant=tenant,
            context=context,
            actor=None if context is not None else Actor.system(by),
            target=consent,
            after={
                "status": status,
                "reason": reason,
                "voices_disabled": [str(v) for v in voice_ids],
                "fine_tunes_cancelled": cancelled_fine_tunes,
                "syntheses_cancelled": cancelled_syntheses,
                "artefacts_delete_after": consent.artefacts_delete_after,
            },
        )
    return consent


def purge_artefacts_due(now=None) -> int:
    """Housekeeping (beat): delete the trained artefacts of voices whose consent ended longer
    ago than CONSENT_ARTEFACT_RETENTION_S."""
    from voices import services as voices

    now = now or timezone.now()
    due = ConsentRecord.dangerously_unscoped.select_related("tenant").filter(
        status__in=ConsentRecord.ENDED,
        artefacts_delete_after__lte=now,
        artefacts_deleted_at=None,
    )
    count = 0
    for consent in due:
        with tenant_context(consent.tenant), transaction.atomic():
            deleted = voices.delete_artefacts_for_consent(consent.tenant, consent)
            ConsentRecord.objects.for_tenant(consent.tenant).filter(pk=consent.pk).update(
                artefacts_deleted_at=now
            )
            audit.record(
                "consent.artefacts_delete",
                tenant=consent.tenant,
                actor=Actor.system("retention"),
                target=consent,
                after={"versions_deleted": deleted},
            )
        count += 1
    return count


# --- evidence for auditors ---------------------------------------------------------------------
def evidence_export(access: Access, consent: ConsentRecord) -> dict:
    access.require(Scope.CONSENT_READ)
    rows = ConsentEvidence.objects.for_tenant(access.tenant).filter(consent=consent)
    return {
        "consent": {
            "id": str(consent.pk),
            "talent": {"id": str(consent.talent_id), "name": consent.talent.name},
            "voice": consent.voice.slug if consent.voice_id else None,
            "company": consent.company,
            "language": consent.language,
            "template_version": consent.template_version,
            "statement": consent.statement,
            "challenge": consent.challenge,
            "status": consent.status,
            "created_at": consent.created_at,
            "created_by": consent.created_by,
            "statement_expires_at": consent.statement_expires_at,
            "valid_until": consent.valid_until,
            "recorded_at": consent.recorded_at,
            "recording_sha256": consent.recording_sha256,
            "verified_at": consent.verified_at,
            "reasons": consent.reasons,
            "override": {
                "reason": consent.override_reason,
                "by": consent.overridden_by,
                "at": consent.overridden_at,
            }
            if consent.overridden_at
            else None,
            "ended": {"at": consent.ended_at, "by": consent.ended_by, "reason": consent.end_reason}
            if consent.ended_at
            else None,
        },
        "evidence": [
            {
                "id": str(row.pk),
                "kind": row.kind,
                "created_at": row.created_at,
                "passed": row.passed,
                "audio_sha256": row.audio_sha256,
                "transcript": row.transcript,
                "checks": row.checks,
                "thresholds": row.thresholds,
                "model_versions": row.model_versions,
                "details": row.details,
            }
            for row in rows
        ],
    }


def get_consent(access: Access, consent_id) -> ConsentRecord:
    consent = (
        ConsentRecord.objects.for_tenant(access.tenant)
        .select_related("talent", "voice")
        .filter(pk=consent_id)
        .first()
    )
    if consent is None:
        raise NotFound()
    return consent
