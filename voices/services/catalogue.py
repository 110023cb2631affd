"""The voice catalogue: stock voices, custom voices and their versions, and whether a voice
may be synthesized with right now (its state and its consent)."""

from __future__ import annotations

import re
from functools import lru_cache

from django.db import transaction
from django.db.models import F, ProtectedError

from audit import services as audit
from audit.services import RequestContext
from consent.models import ConsentRecord, VoiceTalent
from core.errors import ApiError, Conflict, Forbidden
from core.storage import get_storage
from rollout import services as rollout
from rollout.models import ModelVersion
from speech.audio import FORMATS, VALID_SAMPLE_RATES
from speech.engines.base import CONTROL_RANGES, EMOTIONS, ControlError, SynthesisControls
from speech.text import SUPPORTED_ELEMENTS
from tenancy.roles import Scope
from tenancy.services import quotas
from tenancy.services.access import Access
from voices.models import FineTuneJob, TrainingRecording, Voice, VoiceVersion

STOCK_VOICES = [
    {
        "slug": "stock-joe",
        "name": "Joe (US English, stock)",
        "description": "Neutral US English male voice (Piper VITS, en_US-joe-medium).",
    },
]


class UnknownVoice(ApiError):
    status_code = 400
    default_code = "unknown_voice"


class VoiceNotReady(ApiError):
    status_code = 409
    default_code = "voice_not_ready"


class ConsentRevoked(Forbidden):
    default_code = "consent_revoked"
    default_detail = "The voice talent's consent for this voice was revoked or has expired."


class InvalidVoice(ApiError):
    default_code = "invalid_request"


# Names a custom voice may not take: the stock voices and the OpenAI names that map to them.
RESERVED_SLUGS = {"alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage",
                  "shimmer", "verse"}  # fmt: skip
SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,98}[a-z0-9])?$")


def ensure_stock_voices() -> None:
    """Idempotent: registers the packaged stock model and its voices (run after migrate).
    A stock voice keeps the version a completed rollout made stable; only a new one starts on
    the packaged model."""
    version = rollout.register(rollout.stock_spec())
    for entry in STOCK_VOICES:
        Voice.dangerously_unscoped.update_or_create(
            tenant=None,
            slug=entry["slug"],
            defaults={**entry, "kind": Voice.Kind.STOCK, "status": Voice.Status.READY},
            create_defaults={
                **entry,
                "kind": Voice.Kind.STOCK,
                "status": Voice.Status.READY,
                "model_version": version,
            },
        )


def resolve_voice(tenant, slug: str) -> Voice:
    voice = (
        Voice.objects.visible_to(tenant)
        .select_related("model_version", "consent")
        .filter(slug=slug)
        # A tenant's own voice wins over stock. Say where NULLs go: SQLite sorts them first.
        .order_by(F("tenant_id").asc(nulls_last=True))
        .first()
    )
    if voice is None:
        raise UnknownVoice(
            f"Unknown voice {slug!r}. List available voices with GET /api/v1/voices."
        )
    check_usable(voice)
    return voice


def check_usable(voice: Voice) -> None:
    """Raise unless `voice` may be synthesized with now. The API calls it at admission and the
    worker again, on fresh rows, before it starts and before it delivers."""
    if voice.kind == Voice.Kind.CUSTOM and (
        voice.consent is None or voice.consent.status != ConsentRecord.Status.VERIFIED
    ):
        ended = voice.consent is not None and voice.consent.status in ConsentRecord.ENDED
        if ended or voice.disabled_reason == "consent_revoked":
            raise ConsentRevoked(
                f"The consent for voice {voice.slug!r} was {voice.consent.status}; "
                "it can no longer be synthesized."
                if ended
                else ConsentRevoked.default_detail
            )
        raise VoiceNotReady(f"Voice {voice.slug!r} has no verified consent.")
    if voice.status != Voice.Status.READY or voice.model_version_id is None:
        raise VoiceNotReady(f"Voice {voice.slug!r} is {voice.status}, not ready for synthesis.")


def check_usable_now(voice_id) -> None:
    """`check_usable` on rows read afresh (the worker's check)."""
    check_usable(Voice.dangerously_unscoped.select_related("consent").get(pk=voice_id))


def capabilities(voice: Voice) -> dict:
    return {
        "formats": list(FORMATS),
        "sample_rates": list(VALID_SAMPLE_RATES),
        "emotions": list(EMOTIONS),
        "emotion_method": "prosody",
        "controls": {name: {"min": lo, "max": hi} for name, (lo, hi) in CONTROL_RANGES.items()},
        "streaming": True,
        "ssml": list(SUPPORTED_ELEMENTS),
    }


# --- custom voices ------------------------------------------------------------------------------


def parse_controls(controls, field_prefix: str = "") -> SynthesisControls:
    """Synthesis controls from untrusted input, or a 400 `invalid_control` naming the field
    and its allowed range (the synthesis request and a voice's defaults alike)."""
    if not isinstance(controls, dict):
        raise InvalidVoice(
            f"{field_prefix or 'controls'} must be an object.", code="invalid_control"
        )
    try:
        return SynthesisControls.from_dict(controls)
    except ControlError as exc:
        raise InvalidVoice(
            f"{field_prefix}{exc.field}: {exc.message}",
            code="invalid_control",
            details={"field": f"{field_prefix}{exc.field}", "allowed": exc.allowed},
        ) from exc
    except TypeError as exc:
        raise InvalidVoice(str(exc), code="invalid_control") from exc


def _validate_controls(controls) -> dict:
    return parse_controls(controls, "default_controls.").to_dict() if controls else {}


def _voice_snapshot(voice: Voice) -> dict:
    return {
        "slug": voice.slug,
        "name": voice.name,
        "status": voice.status,
        "talent": str(voice.talent_id) if voice.talent_id else None,
        "active_version": str(voice.active_version_id) if voice.active_version_id else None,
        "default_controls": voice.default_controls,
    }


def create_voice(
    access: Access,
    *,
    slug: str,
    name: str,
    talent: VoiceTalent,
    language: str = "en-US",
    description: str = "",
    default_controls: dict | None = None,
    context: RequestContext | None = None,
) -> Voice:
    """A draft custom voice of `talent`; counts against the plan's voice limit atomically."""
    access.require(Scope.VOICES_WRITE)
    tenant = access.tenant
    if not SLUG_RE.match(slug or "") or slug in RESERVED_SLUGS or slug.startswith("stock-"):
        raise InvalidVoice(
            f"{slug!r} cannot name a custom voice: use lowercase letters, digits and hyphens, "
            "not a stock or OpenAI voice name.",
            code="invalid_slug",
        )
    controls = _validate_controls(default_controls or {})
    with transaction.atomic():
        if Voice.objects.for_tenant(tenant).filter(slug=slug).exists():
            raise Conflict(f"A voice named {slug!r} already exists.", code="voice_exists")
        quotas.take(tenant, quotas.VOICES, 1)
        voice = Voice.objects.for_tenant(tenant).create(
            tenant=tenant,
            slug=slug,
            name=name,
            kind=Voice.Kind.CUSTOM,
            status=Voice.Status.DRAFT,
            language=language,
            description=description,
            talent=talent,
            default_controls=controls,
        )
        audit.record(
            "voice.create", tenant=tenant, context=context, target=voice,
            after=_voice_snapshot(voice),
        )  # fmt: skip
    return voice


def update_voice(
    access: Access, voice: Voice, *, context: RequestContext | None = None, **fields
) -> Voice:
    access.require(Scope.VOICES_WRITE)
    _require_custom(voice)
    changes = {k: v for k, v in fields.items() if k in ("name", "description", "default_controls")}
    if "default_controls" in changes:
        changes["default_controls"] = _validate_controls(changes["default_controls"])
    before = _voice_snapshot(voice)
    with transaction.atomic():
        for key, value in changes.items():
            setattr(voice, key, value)
        voice.save(update_fields=list(changes) or None)
        audit.record(
            "voice.update", tenant=access.tenant, context=context, target=voice,
            before=before, after=_voice_snapshot(voice),
        )  # fmt: skip
    return voice


def _require_custom(voice: Voice) -> None:
    if voice.kind != Voice.Kind.CUSTOM:
        raise Forbidden("Stock voices cannot be changed.", code="stock_voice")


def activate_version(
    access: Access, voice: Voice, version: VoiceVersion, *, context: RequestContext | None = None
) -> Voice:
    """Switch the voice to one of its ready versions (roll back or forward)."""
    access.require(Scope.VOICES_WRITE)
    _require_custom(voice)
    if version.voice_id != voice.pk or version.status != VoiceVersion.Status.READY:
        raise Conflict(
            f"Version {version.number} is {version.status}; only a ready version can be active.",
            code="version_not_ready",
        )
    if voice.status == Voice.Status.DISABLED:
        raise Conflict("The voice is disabled.", code="voice_disabled")
    before = _voice_snapshot(voice)
    with transaction.atomic():
        Voice.objects.for_tenant(access.tenant).filter(pk=voice.pk).update(
            active_version=version, model_version=version.model_version, status=Voice.Status.READY
        )
        voice.refresh_from_db()
        audit.record(
            "voice.activate_version", tenant=access.tenant, context=context, target=voice,
            before=before, after=_voice_snapshot(voice),
        )  # fmt: skip
    return voice


def delete_voice(access: Access, voice: Voice, *, context: RequestContext | None = None) -> None:
    """Delete a custom voice with its recordings and artefacts; frees its plan allowance.

    A voice that has served requests is kept for their history: disable it instead."""
    access.require(Scope.VOICES_WRITE)
    _require_custom(voice)
    tenant = access.tenant
    if (
        FineTuneJob.objects.for_tenant(tenant)
        .filter(voice=voice, status__in=FineTuneJob.ACTIVE)
        .exists()
    ):
        raise Conflict("Cancel the voice's running fine-tune first.", code="fine_tune_active")
    keys, freed = _stored_objects(tenant, voice)
    before = _voice_snapshot(voice)
    with transaction.atomic():
        audit.record("voice.delete", tenant=tenant, context=context, target=voice, before=before)
        try:
            with transaction.atomic():
                voice.delete()
        except ProtectedError as exc:
            raise Conflict(
                "The voice has synthesis history; disable it instead of deleting it.",
                code="voice_in_use",
            ) from exc
        quotas.release(tenant, quotas.VOICES, 1)
        quotas.release(tenant, quotas.STORAGE_BYTES, freed)
    storage = get_storage()
    for key in keys:
        storage.delete(key)


def _stored_objects(tenant, voice: Voice) -> tuple[list[str], int]:
    keys, total = [], 0
    for rec in TrainingRecording.objects.for_tenant(tenant).filter(voice=voice):
        for key, size in ((rec.upload_key, rec.upload_bytes), (rec.audio_key, rec.audio_bytes)):
            if key:
                keys.append(key)
                total += size
    for version in VoiceVersion.objects.for_tenant(tenant).filter(voice=voice):
        if version.artefact_key:
            keys.append(version.artefact_key)
            total += version.artefact_bytes
    return keys, total


# --- consent ended ------------------------------------------------------------------------------
def disable_for_consent(tenant, consent: ConsentRecord, reason: str) -> list:
    """Disable every voice that uses `consent`; returns their ids."""
    voices = Voice.objects.for_tenant(tenant).filter(consent=consent)
    ids = list(voices.values_list("pk", flat=True))
    voices.update(status=Voice.Status.DISABLED, disabled_reason=reason)
    return ids


def delete_artefacts_for_consent(tenant, consent: ConsentRecord) -> int:
    """Delete the trained artefacts of the consent's voices; the versions stay as history."""
    versions = VoiceVersion.objects.for_tenant(tenant).filter(
        voice__consent=consent, status__in=[VoiceVersion.Status.READY, VoiceVersion.Status.FAILED]
    )
    storage = get_storage()
    count = 0
    for version in versions:
        if version.artefact_key:
            storage.delete(version.artefact_key)
            quotas.release(tenant, quotas.STORAGE_BYTES, version.artefact_bytes)
        if version.model_version_id:
            ModelVersion.dangerously_unscoped.filter(pk=version.model_version_id).update(
                status=ModelVersion.Status.RETIRED
            )
        VoiceVersion.objects.for_tenant(tenant).filter(pk=version.pk).update(
            status=VoiceVersion.Status.DELETED, artefact_key=""
        )
        count += 1
    return count


# --- reference embeddings ------------------------------------------------------------------
STOCK_REFERENCE_SENTENCES = (
    "Thank you for calling, how can I help you today?",
    "The weather this weekend looks bright and mild.",
    "Please remember to bring your ticket to the counter.",
)


@lru_cache(maxsize=1)
def stock_embedding():
    """Mean speaker embedding of the stock voice (consent fraud check: our own voice)."""
    from rollout.engines import engine_cache
    from speech import speaker

    engine = engine_cache().get(rollout.stock_spec())
    clips = [engine.synthesize(text) for text in STOCK_REFERENCE_SENTENCES]
    return speaker.mean_embedding([speaker.embed(c, engine.sample_rate) for c in clips])
