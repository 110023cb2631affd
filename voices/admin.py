from django.contrib import admin

from core.admin import ReadOnlyAdmin
from voices.models import Voice


@admin.register(Voice)
class VoiceAdmin(ReadOnlyAdmin):
    list_display = ["slug", "name", "kind", "status", "tenant", "model_version"]
    list_filter = ["kind", "status"]
