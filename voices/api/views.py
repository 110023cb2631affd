from rest_framework import mixins

from tenancy.api.base import TenantScopedViewSet
from voices.api.serializers import VoiceSerializer
from voices.models import Voice


class VoiceViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """Voices this tenant may synthesize with: its own and the stock voices."""

    scoped_model = Voice
    scope_method = "visible_to"
    serializer_class = VoiceSerializer
    filterset_fields = ["kind", "status", "language"]
    lookup_field = "slug"
    # A synthesize-only key must be able to discover voices.
    required_scopes = {"list": None, "retrieve": None}

    def safely_get_queryset(self, queryset):
        return queryset.order_by("kind", "slug")
