from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from consent import services
from consent.api.serializers import (
    ConsentRecordingUploadSerializer,
    ConsentRecordSerializer,
    ConsentRequestSerializer,
    ReasonSerializer,
    VoiceTalentSerializer,
)
from consent.models import ConsentRecord, VoiceTalent
from core.uploads import read_upload
from tenancy.api.base import TenantScopedViewSet
from tenancy.roles import Scope


class VoiceTalentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """Voice talents of the tenant: the people whose voices become brand voices."""

    scoped_model = VoiceTalent
    serializer_class = VoiceTalentSerializer
    filterset_fields = ["name"]
    required_scopes = {
        "list": Scope.CONSENT_READ,
        "retrieve": Scope.CONSENT_READ,
        "create": Scope.CONSENT_WRITE,
        "partial_update": Scope.CONSENT_WRITE,
    }

    def safely_get_queryset(self, queryset):
        return queryset.order_by("-created_at")

    def create(self, request, *args, **kwargs):
        params = VoiceTalentSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        talent = services.create_talent(
            self.access, context=self.audit_context, **params.validated_data
        )
        return Response(VoiceTalentSerializer(talent).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        params = VoiceTalentSerializer(data=request.data, partial=True)
        params.is_valid(raise_exception=True)
        talent = services.update_talent(
            self.access, self.get_object(), context=self.audit_context, **params.validated_data
        )
        return Response(VoiceTalentSerializer(talent).data)


class ConsentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """Consent statements, their recordings, verification results and evidence.

    `POST /consents` issues a statement (fresh challenge, limited validity) for a talent and a
    voice; `POST /consents/{id}/recording` uploads the talent reading it (any audio format) and
    queues its verification; `GET /consents/{id}` shows the outcome and its reasons."""

    scoped_model = ConsentRecord
    serializer_class = ConsentRecordSerializer
    filterset_fields = ["status", "talent", "language"]
    parser_classes = [JSONParser, MultiPartParser, FormParser]
    required_scopes = {
        "list": Scope.CONSENT_READ,
        "retrieve": Scope.CONSENT_READ,
        "evidence": Scope.CONSENT_READ,
        "create": Scope.CONSENT_WRITE,
        "recording": Scope.CONSENT_WRITE,
        "override": Scope.CONSENT_WRITE,
        "revoke": Scope.CONSENT_WRITE,
    }

    def safely_get_queryset(self, queryset):
        return queryset.select_related("talent", "voice").order_by("-created_at")

    @extend_schema(request=ConsentRequestSerializer, responses={201: ConsentRecordSerializer})
    def create(self, request, *args, **kwargs):
        params = ConsentRequestSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        consent = services.request_statement(
            self.access, context=self.audit_context, **params.validated_data
        )
        return Response(ConsentRecordSerializer(consent).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request={"multipart/form-data": ConsentRecordingUploadSerializer},
        responses={202: ConsentRecordSerializer},
    )
    @action(detail=True, methods=["post"], parser_classes=[MultiPartParser, FormParser])
    def recording(self, request, *args, **kwargs):
        consent = self.get_object()
        data = read_upload(request, max_bytes=settings.CONSENT_MAX_RECORDING_BYTES)
        consent = services.submit_recording(self.access, consent, data, context=self.audit_context)
        return Response(ConsentRecordSerializer(consent).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=ReasonSerializer, responses={200: ConsentRecordSerializer})
    @action(detail=True, methods=["post"])
    def override(self, request, *args, **kwargs):
        params = ReasonSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        consent = services.override(
            self.access, self.get_object(), params.validated_data["reason"],
            context=self.audit_context,
        )  # fmt: skip
        return Response(ConsentRecordSerializer(consent).data)

    @extend_schema(request=ReasonSerializer, responses={200: ConsentRecordSerializer})
    @action(detail=True, methods=["post"])
    def revoke(self, request, *args, **kwargs):
        params = ReasonSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        consent = services.revoke(
            self.access, self.get_object(), params.validated_data["reason"],
            context=self.audit_context,
        )  # fmt: skip
        return Response(ConsentRecordSerializer(consent).data)

    @extend_schema(request=None, responses={200: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["get"])
    def evidence(self, request, *args, **kwargs):
        """The immutable evidence for auditors: audio SHA-256, transcript, scores, thresholds,
        model versions and timestamps of every verification (and any override)."""
        return Response(services.evidence_export(self.access, self.get_object()))
