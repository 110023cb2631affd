from django.contrib import admin

from core.admin import ReadOnlyAdmin
from tenancy.models import ApiKey, Membership, Plan, Tenant, UsageRecord


@admin.register(Plan)
class PlanAdmin(ReadOnlyAdmin):
    list_display = [
        "slug",
        "name",
        "monthly_characters",
        "requests_per_minute_per_key",
        "concurrent_jobs",
    ]


@admin.register(Tenant)
class TenantAdmin(ReadOnlyAdmin):
    list_display = ["slug", "name", "status", "plan", "created_at"]
    list_filter = ["status", "plan"]
    search_fields = ["slug", "name"]


@admin.register(Membership)
class MembershipAdmin(ReadOnlyAdmin):
    list_display = ["user", "tenant", "role", "created_at"]
    list_filter = ["role"]


@admin.register(ApiKey)
class ApiKeyAdmin(ReadOnlyAdmin):
    list_display = ["name", "masked", "tenant", "status", "last_used_at", "expires_at"]
    exclude = ["digest"]
    search_fields = ["name", "key_id"]


@admin.register(UsageRecord)
class UsageRecordAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "tenant", "voice", "characters", "audio_seconds", "status"]
    list_filter = ["status"]
