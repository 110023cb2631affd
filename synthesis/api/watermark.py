"""POST /api/v1/watermark/detect: trace an audio clip back to the request that made it."""

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from core.errors import ApiError
from speech import audio
from synthesis import watermarking
from tenancy.api.base import TenantScopedAPIView
from tenancy.roles import Scope


class WatermarkDetectView(TenantScopedAPIView):
    """Upload a clip (any supported format) as multipart field `file`."""

    required_scopes = {"POST": Scope.AUDIT_READ}
    parser_classes = [MultiPartParser]

    @extend_schema(
        request={
            "multipart/form-data": {
                "type": "object",
                "properties": {"file": {"type": "string", "format": "binary"}},
            }
        },
        responses=OpenApiTypes.OBJECT,
    )
    def post(self, request, *args, **kwargs):
        upload = request.FILES.get("file")
        if upload is None:
            raise ApiError("Upload the clip as multipart field 'file'.", code="file_required")
        if upload.size > settings.WATERMARK_DETECT_MAX_BYTES:
            raise ApiError(
                f"The file is larger than {settings.WATERMARK_DETECT_MAX_BYTES} bytes.",
                code="audio_too_large",
                status_code=413,
            )
        try:
            result = watermarking.identify(self.tenant, upload.read(), self.audit_context)
        except audio.AudioError as exc:
            raise ApiError(exc.message, code=exc.code) from exc
        return Response(result)
