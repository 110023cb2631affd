"""Audit event filters, shared by the API and the console."""

import django_filters
from django.db.models import Q

from audit.models import AuditEvent
from core.filters import TenantScopedFilterSet


class AuditEventFilter(TenantScopedFilterSet):
    since = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    action = django_filters.CharFilter()
    action_prefix = django_filters.CharFilter(field_name="action", lookup_expr="startswith")
    # Free-text searches, as a person types them: the actor's label (or exact id), and the
    # target's type or frozen repr.
    actor = django_filters.CharFilter(method="filter_actor")
    target = django_filters.CharFilter(method="filter_target")

    class Meta:
        model = AuditEvent
        fields = ["action", "actor_type", "actor_id", "target_type", "target_id", "request_id"]

    def filter_actor(self, queryset, name, value):
        return queryset.filter(Q(actor_label__icontains=value) | Q(actor_id=value))

    def filter_target(self, queryset, name, value):
        return queryset.filter(
            Q(target_type__icontains=value) | Q(target_repr__icontains=value) | Q(target_id=value)
        )
