"""Voice lookup and the stock voice catalogue."""

from __future__ import annotations

from django.db.models import F

from core.errors import ApiError
from rollout import services as rollout
from speech.audio import FORMATS, VALID_SAMPLE_RATES
from speech.engines.base import CONTROL_RANGES, EMOTIONS
from speech.text import SUPPORTED_ELEMENTS
from voices.models import Voice

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


def ensure_stock_voices() -> None:
    """Idempotent: registers the packaged stock model and its voices (run after migrate)."""
    version = rollout.register(rollout.stock_spec())
    for entry in STOCK_VOICES:
        Voice.dangerously_unscoped.update_or_create(
            tenant=None,
            slug=entry["slug"],
            defaults={
                **entry,
                "kind": Voice.Kind.STOCK,
                "status": Voice.Status.READY,
                "model_version": version,
            },
        )


def resolve_voice(tenant, slug: str) -> Voice:
    voice = (
        Voice.objects.visible_to(tenant)
        .select_related("model_version")
        .filter(slug=slug)
        # A tenant's own voice wins over stock. Say where NULLs go: SQLite sorts them first.
        .order_by(F("tenant_id").asc(nulls_last=True))
        .first()
    )
    if voice is None:
        raise UnknownVoice(
            f"Unknown voice {slug!r}. List available voices with GET /api/v1/voices."
        )
    if voice.status != Voice.Status.READY or voice.model_version is None:
        raise VoiceNotReady(f"Voice {slug!r} is {voice.status}, not ready for synthesis.")
    return voice


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
