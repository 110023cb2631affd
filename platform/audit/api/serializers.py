from rest_framework import serializers

from audit.models import AuditEvent
from audit.services import EXPORT_FIELDS


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        # The tenant is implied by the URL or the key.
        fields = [name for name in EXPORT_FIELDS if name != "tenant_id"]
