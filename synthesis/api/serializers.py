from rest_framework import serializers

from speech import audio
from speech.engines.base import CONTROL_RANGES, EMOTIONS
from synthesis.models import SynthesisRequest

CONTROL_FIELDS = ("speed", "pitch", "volume", "emotion", "intensity")


def _range(name: str, prefix: str = "", signed: bool = False) -> str:
    lo, hi = CONTROL_RANGES[name]
    return f"{prefix}{lo:g} to {hi:+g}" if signed else f"{prefix}{lo:g} to {hi:g}"


class StrictSerializer(serializers.Serializer):
    """Unknown fields are an error, not silently ignored (a typo must not go unnoticed)."""

    def validate(self, attrs):
        unknown = sorted(set(self.initial_data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError(
                {name: "Unknown field." for name in unknown}, code="unknown_field"
            )
        return attrs


class SynthesizeSerializer(StrictSerializer):
    voice = serializers.CharField(max_length=100)
    # Length limits are the plan's (checked by the service, with a dedicated error code).
    text = serializers.CharField(trim_whitespace=False, allow_blank=True)
    format = serializers.CharField(default="wav", help_text=f"One of {', '.join(audio.FORMATS)}")
    sample_rate = serializers.IntegerField(
        required=False, allow_null=True, help_text=", ".join(map(str, audio.VALID_SAMPLE_RATES))
    )
    mode = serializers.ChoiceField(choices=SynthesisRequest.Mode.choices, default="sync")
    delivery = serializers.ChoiceField(
        choices=["audio", "url"],
        default="audio",
        help_text="sync mode: audio bytes, or JSON with a URL",
    )
    # Ranges are checked by the service (SynthesisControls), with the allowed values in the error.
    speed = serializers.FloatField(required=False, help_text=_range("speed"))
    pitch = serializers.FloatField(
        required=False, help_text=_range("pitch", "semitones, ", signed=True)
    )
    volume = serializers.FloatField(required=False, help_text=_range("volume", "linear gain, "))
    emotion = serializers.CharField(required=False, help_text=", ".join(EMOTIONS))
    intensity = serializers.FloatField(required=False, help_text=_range("intensity"))
    webhook_url = serializers.URLField(required=False, allow_blank=True, max_length=500)
    model_version = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=200,
        help_text="An explicit model version id, where the tenant's rollout policy allows it.",
    )

    def controls(self) -> dict:
        return {k: self.validated_data[k] for k in CONTROL_FIELDS if k in self.validated_data}


class SynthesisRequestSerializer(serializers.ModelSerializer):
    voice = serializers.CharField(source="voice_slug")
    error = serializers.SerializerMethodField()
    timings = serializers.SerializerMethodField()
    watermark = serializers.SerializerMethodField()

    class Meta:
        model = SynthesisRequest
        fields = [
            "id",
            "request_id",
            "status",
            "mode",
            "voice",
            "model_version",
            "characters",
            "text_sha256",
            "controls",
            "format",
            "sample_rate",
            "audio_seconds",
            "audio_bytes",
            "created_at",
            "started_at",
            "finished_at",
            "timings",
            "error",
            "watermark",
        ]

    def get_error(self, job) -> dict | None:
        return {"code": job.error_code, "message": job.error_message} if job.error_code else None

    def get_timings(self, job) -> dict:
        return {
            "queue_wait_ms": job.queue_wait_ms,
            "synthesis_ms": job.synthesis_ms,
            "encode_ms": job.encode_ms,
            # The engine's output came from the repeat-prompt cache (no synthesis_ms then).
            "prompt_cache_hit": job.prompt_cache_hit,
        }

    def get_watermark(self, job) -> dict | None:
        if not job.watermark_backend:
            return None
        return {"backend": job.watermark_backend, "key_id": job.watermark_key_id}
