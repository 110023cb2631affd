from django.contrib import admin

from core.admin import ReadOnlyAdmin
from rollout.models import ModelVersion


@admin.register(ModelVersion)
class ModelVersionAdmin(ReadOnlyAdmin):
    list_display = ["id", "engine", "version", "status", "created_at"]
