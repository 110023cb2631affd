from rest_framework import serializers

from voices import services
from voices.models import Voice


class VoiceSerializer(serializers.ModelSerializer):
    model_version = serializers.CharField(source="model_version_id", allow_null=True)
    capabilities = serializers.SerializerMethodField()

    class Meta:
        model = Voice
        fields = [
            "id",
            "slug",
            "name",
            "kind",
            "status",
            "language",
            "description",
            "model_version",
            "capabilities",
            "created_at",
        ]

    def get_capabilities(self, voice) -> dict:
        return services.capabilities(voice)
