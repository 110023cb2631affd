from django.contrib import admin

from consent.models import ConsentEvidence, ConsentRecord, StatementTemplate, VoiceTalent
from core.admin import ReadOnlyAdmin


@admin.register(StatementTemplate)
class StatementTemplateAdmin(admin.ModelAdmin):
    """Statement wording is data operators maintain. Issued consents keep the text they were
    given, so editing a template never changes a past consent; add a new version instead."""

    list_display = ["language", "version", "active", "created_at"]
    list_filter = ["language", "active"]


@admin.register(VoiceTalent)
class VoiceTalentAdmin(ReadOnlyAdmin):
    list_display = ["name", "tenant", "created_at"]


@admin.register(ConsentRecord)
class ConsentRecordAdmin(ReadOnlyAdmin):
    list_display = ["id", "tenant", "talent", "status", "created_at", "verified_at", "ended_at"]
    list_filter = ["status"]


@admin.register(ConsentEvidence)
class ConsentEvidenceAdmin(ReadOnlyAdmin):
    list_display = ["id", "consent", "kind", "passed", "created_at"]
