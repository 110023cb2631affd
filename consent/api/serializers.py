from rest_framework import serializers

from consent.models import ConsentRecord, VoiceTalent
from voices.models import Voice


class VoiceTalentSerializer(serializers.ModelSerializer):
    languages = serializers.ListField(child=serializers.CharField(max_length=16), required=False)

    class Meta:
        model = VoiceTalent
        fields = ["id", "name", "email", "phone", "notes", "languages", "created_at"]
        read_only_fields = ["id", "created_at"]


class ConsentRecordSerializer(serializers.ModelSerializer):
    voice = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    talent_name = serializers.CharField(source="talent.name", read_only=True)
    override = serializers.SerializerMethodField()
    ended = serializers.SerializerMethodField()

    class Meta:
        model = ConsentRecord
        fields = [
            "id",
            "talent",
            "talent_name",
            "voice",
            "language",
            "company",
            "purpose",
            "statement",
            "challenge",
            "status",
            "reasons",
            "statement_expires_at",
            "valid_until",
            "recorded_at",
            "recording_sha256",
            "verified_at",
            "override",
            "ended",
            "created_at",
            "created_by",
        ]
        read_only_fields = fields

    def get_override(self, consent) -> dict | None:
        if not consent.overridden_at:
            return None
        return {
            "reason": consent.override_reason,
            "by": consent.overridden_by,
            "at": consent.overridden_at,
        }

    def get_ended(self, consent) -> dict | None:
        if not consent.ended_at:
            return None
        return {
            "at": consent.ended_at,
            "by": consent.ended_by,
            "reason": consent.end_reason,
            "artefacts_delete_after": consent.artefacts_delete_after,
            "artefacts_deleted_at": consent.artefacts_deleted_at,
        }


class CustomVoiceField(serializers.SlugRelatedField):
    def get_queryset(self):
        # Built per request, from the default manager scoped to the request's tenant.
        return Voice.objects.filter(kind=Voice.Kind.CUSTOM)


class ConsentRequestSerializer(serializers.Serializer):
    # Default managers are scoped to the request's tenant: another tenant's talent or voice is
    # answered exactly like an unknown one.
    talent = serializers.PrimaryKeyRelatedField(queryset=VoiceTalent.objects)
    voice = CustomVoiceField(slug_field="slug", queryset=Voice.objects)
    language = serializers.CharField(max_length=16, required=False)
    valid_until = serializers.DateTimeField(required=False, allow_null=True)


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class ConsentRecordingUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="The talent's recording of the statement, any format.")
