from django.contrib import admin

from audit.models import AuditEvent
from core.admin import ReadOnlyAdmin


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "chain", "seq", "action", "actor_label", "target_repr"]
    list_filter = ["action", "actor_type"]
    search_fields = ["action", "actor_label", "target_id", "request_id"]
