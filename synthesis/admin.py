from django.contrib import admin

from core.admin import ReadOnlyAdmin
from synthesis.models import SynthesisRequest


@admin.register(SynthesisRequest)
class SynthesisRequestAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "tenant",
        "voice_slug",
        "mode",
        "status",
        "characters",
        "audio_seconds",
        "model_version",
    ]
    list_filter = ["status", "mode"]
    exclude = ["text"]
    search_fields = ["request_id", "watermark_payload"]
