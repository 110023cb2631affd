"""OpenAI-compatible speech API: POST /v1/audio/speech, GET /v1/models, GET /v1/audio/voices.

The official `openai` SDK works unchanged with `base_url=<timbre>/v1` and a Timbre API key.
OpenAI voice names map to the stock voice; Timbre voice slugs work as they are.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from rollout.models import ModelVersion
from synthesis import services
from synthesis.api.serializers import StrictSerializer
from synthesis.api.views import streaming_response, submit_from
from synthesis.models import SynthesisRequest
from tenancy.api.base import TenantScopedAPIView
from tenancy.roles import Scope
from voices.models import Voice

OPENAI_MODELS = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts")
OPENAI_VOICES = (
    "alloy",
    "ash",
    "ballad",
    "coral",
    "echo",
    "fable",
    "nova",
    "onyx",
    "sage",
    "shimmer",
    "verse",
)
DEFAULT_VOICE = "stock-joe"
FORMATS = {"mp3": "mp3", "opus": "opus", "flac": "flac", "wav": "wav", "pcm": "pcm"}
# `instructions` are free text; these words pick the closest prosody profile.
EMOTION_WORDS = {
    "whisper": "whispery",
    "cheer": "happy",
    "happy": "happy",
    "joy": "happy",
    "sad": "sad",
    "melanchol": "sad",
    "angry": "angry",
    "furious": "angry",
    "calm": "calm",
    "sooth": "calm",
    "relax": "calm",
    "excit": "excited",
    "energetic": "excited",
    "enthusias": "excited",
}


def emotion_from_instructions(instructions: str) -> str:
    lowered = instructions.lower()
    return next((emotion for word, emotion in EMOTION_WORDS.items() if word in lowered), "neutral")


class SpeechSerializer(StrictSerializer):
    model = serializers.CharField(max_length=200)
    input = serializers.CharField(trim_whitespace=False, allow_blank=True)
    voice = serializers.CharField(max_length=100)
    response_format = serializers.CharField(default="mp3")
    speed = serializers.FloatField(default=1.0)
    instructions = serializers.CharField(required=False, allow_blank=True, max_length=4096)
    stream_format = serializers.ChoiceField(choices=["audio"], default="audio")
    # OpenAI's end-user id: the rollout's stickiness key (checked like X-End-User-Id).
    user = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)


class SpeechView(TenantScopedAPIView):
    required_scopes = {"POST": Scope.SYNTHESIZE}

    @extend_schema(request=SpeechSerializer, responses={(200, "audio/*"): OpenApiTypes.BINARY})
    def post(self, request, *args, **kwargs):
        params = SpeechSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        model = data["model"]
        fmt = data["response_format"]
        if fmt not in FORMATS:
            raise services.InvalidSynthesisRequest(
                f"Unsupported response_format {fmt!r}.",
                code="unsupported_format",
                details={"allowed": list(FORMATS)},
            )
        controls = {"speed": data["speed"]}
        if data.get("instructions"):
            controls["emotion"] = emotion_from_instructions(data["instructions"])
        job = submit_from(
            self,
            services.SynthesisParams(
                voice=DEFAULT_VOICE if data["voice"] in OPENAI_VOICES else data["voice"],
                text=data["input"],
                format=FORMATS[fmt],
                # OpenAI's pcm is 24 kHz 16-bit mono; keep that contract.
                sample_rate=24000 if fmt == "pcm" else None,
                mode=SynthesisRequest.Mode.STREAM,
                controls=controls,
                end_user=data.get("user", ""),
                # OpenAI's model names mean "whatever the rollout gives"; any other model is
                # a model version id, asked for explicitly (the rollout policy decides).
                model_version="" if model in OPENAI_MODELS else model,
            ),
        )
        return streaming_response(job)


class ModelsView(TenantScopedAPIView):
    required_scopes = {"GET": None}

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, *args, **kwargs):
        versions = ModelVersion.objects.visible_to(self.tenant).filter(
            status=ModelVersion.Status.VALIDATED
        )
        data = [
            {"id": name, "object": "model", "created": 0, "owned_by": "timbre"}
            for name in OPENAI_MODELS
        ]
        data += [
            {
                "id": v.id,
                "object": "model",
                "created": int(v.created_at.timestamp()),
                "owned_by": "timbre",
            }
            for v in versions
        ]
        return Response({"object": "list", "data": data})


class OpenAIVoicesView(TenantScopedAPIView):
    required_scopes = {"GET": None}

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, *args, **kwargs):
        voices = Voice.objects.visible_to(self.tenant).filter(status=Voice.Status.READY)
        data = [{"id": v.slug, "name": v.name, "object": "voice"} for v in voices]
        data += [
            {"id": name, "name": f"{name} (maps to {DEFAULT_VOICE})", "object": "voice"}
            for name in OPENAI_VOICES
        ]
        return Response({"object": "list", "data": data})
