from rest_framework import serializers

from consent.models import VoiceTalent
from voices import services
from voices.models import FineTuneJob, TrainingRecording, Voice, VoiceVersion


class VoiceSerializer(serializers.ModelSerializer):
    model_version = serializers.CharField(source="model_version_id", allow_null=True)
    capabilities = serializers.SerializerMethodField()
    consent = serializers.SerializerMethodField()
    active_version = serializers.IntegerField(source="active_version.number", allow_null=True)

    class Meta:
        model = Voice
        fields = [
            "id",
            "slug",
            "name",
            "kind",
            "status",
            "disabled_reason",
            "language",
            "description",
            "talent",
            "consent",
            "active_version",
            "default_controls",
            "model_version",
            "capabilities",
            "created_at",
        ]

    def get_capabilities(self, voice) -> dict:
        return services.capabilities(voice)

    def get_consent(self, voice) -> dict | None:
        if voice.consent_id is None:
            return None
        return {"id": str(voice.consent_id), "status": voice.consent.status}


class VoiceCreateSerializer(serializers.Serializer):
    slug = serializers.CharField(max_length=100)
    name = serializers.CharField(max_length=200)
    # The scoped default manager: another tenant's talent is answered like an unknown one.
    talent = serializers.PrimaryKeyRelatedField(queryset=VoiceTalent.objects)
    language = serializers.CharField(max_length=16, required=False, default="en-US")
    description = serializers.CharField(required=False, allow_blank=True, default="")
    default_controls = serializers.DictField(required=False, default=dict)


class VoiceUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    default_controls = serializers.DictField(required=False)


class TrainingRecordingSerializer(serializers.ModelSerializer):
    class Meta:
        model = TrainingRecording
        fields = [
            "id",
            "filename",
            "transcript",
            "status",
            "problems",
            "duration_s",
            "sample_rate",
            "asr_transcript",
            "wer",
            "speaker_score",
            "quality",
            "sha256",
            "created_at",
            "checked_at",
        ]
        read_only_fields = fields


class TrainingUploadSerializer(serializers.Serializer):
    file = serializers.FileField(
        help_text="One recording (any audio format) with `transcript`, or a zip archive with "
        "metadata.csv (file, transcript)."
    )
    transcript = serializers.CharField(required=False, allow_blank=True, default="")


class VoiceVersionSerializer(serializers.ModelSerializer):
    model_version = serializers.CharField(source="model_version_id", allow_null=True)

    class Meta:
        model = VoiceVersion
        fields = [
            "id",
            "number",
            "status",
            "model_version",
            "artefact_sha256",
            "artefact_bytes",
            "metrics",
            "gate_failures",
            "train_recordings",
            "held_out_recordings",
            "created_at",
        ]
        read_only_fields = fields


class FineTuneJobSerializer(serializers.ModelSerializer):
    voice = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    version = serializers.IntegerField(source="version.number", allow_null=True, read_only=True)
    progress = serializers.SerializerMethodField()

    class Meta:
        model = FineTuneJob
        fields = [
            "id",
            "voice",
            "status",
            "progress",
            "steps",
            "version",
            "error_code",
            "error_message",
            "created_by",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields

    def get_progress(self, job) -> dict:
        return {
            "phase": job.phase,
            "step": job.step,
            "total_steps": job.total_steps,
            "loss": job.loss,
            "percent": job.percent,
            "eta_s": job.eta_s,
        }


class FineTuneStartSerializer(serializers.Serializer):
    steps = serializers.IntegerField(required=False, min_value=1)
