import csv
import io
import json

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins
from rest_framework.decorators import action

from audit import services as audit
from audit.api.serializers import AuditEventSerializer
from audit.filters import AuditEventFilter
from audit.models import AuditEvent
from core.errors import ApiError
from tenancy.api.base import TenantScopedViewSet
from tenancy.roles import Scope


def _csv_lines(rows):
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=audit.EXPORT_FIELDS)
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {**row, "before": json.dumps(row["before"]), "after": json.dumps(row["after"])}
        )
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


class AuditEventViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """The tenant's audit log: read-only, for auditors and admins."""

    scoped_model = AuditEvent
    serializer_class = AuditEventSerializer
    filterset_class = AuditEventFilter
    required_scopes = {"*": Scope.AUDIT_READ}
    lookup_field = "seq"
    lookup_value_regex = "[0-9]+"

    def safely_get_queryset(self, queryset):
        return queryset.order_by("-seq")

    @extend_schema(
        parameters=[OpenApiParameter("format", OpenApiTypes.STR, enum=["jsonl", "csv"])],
        responses={(200, "application/x-ndjson"): OpenApiTypes.STR},
    )
    @action(detail=False, methods=["get"])
    def export(self, request, *args, **kwargs):
        """Stream the filtered events as JSON Lines (default) or CSV. Exports are audited."""
        fmt = request.query_params.get("format", "jsonl")
        if fmt not in ("jsonl", "csv"):
            raise ApiError("format must be jsonl or csv.", code="invalid_format")
        rows = audit.export_rows(
            self.tenant,
            self.filter_queryset(self.get_queryset()),
            fmt,
            filters=dict(request.query_params.lists()),
            context=audit.context_from_request(request),
        )
        if fmt == "csv":
            response = StreamingHttpResponse(_csv_lines(rows), content_type="text/csv")
        else:
            response = StreamingHttpResponse(
                (json.dumps(row, default=str) + "\n" for row in rows),
                content_type="application/x-ndjson",
            )
        response["Content-Disposition"] = f'attachment; filename="audit-{self.tenant.slug}.{fmt}"'
        return response
