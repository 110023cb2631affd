from django.contrib import admin

from core.admin import ReadOnlyAdmin
from voices.models import FineTuneJob, TrainingRecording, Voice, VoiceVersion


@admin.register(Voice)
class VoiceAdmin(ReadOnlyAdmin):
    list_display = ["slug", "name", "kind", "status", "tenant", "model_version"]
    list_filter = ["kind", "status"]


@admin.register(VoiceVersion)
class VoiceVersionAdmin(ReadOnlyAdmin):
    list_display = ["voice", "number", "status", "model_version", "created_at"]
    list_filter = ["status"]


@admin.register(TrainingRecording)
class TrainingRecordingAdmin(ReadOnlyAdmin):
    list_display = ["filename", "voice", "status", "duration_s", "created_at"]
    list_filter = ["status"]


@admin.register(FineTuneJob)
class FineTuneJobAdmin(ReadOnlyAdmin):
    list_display = ["id", "voice", "status", "percent", "created_at", "finished_at"]
    list_filter = ["status"]
