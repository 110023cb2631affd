from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from core.errors import NotFound
from core.uploads import uploaded_file
from tenancy.api.base import TenantScopedViewSet
from tenancy.roles import Scope
from voices.api.serializers import (
    FineTuneJobSerializer,
    FineTuneStartSerializer,
    TrainingRecordingSerializer,
    TrainingUploadSerializer,
    VoiceCreateSerializer,
    VoiceSerializer,
    VoiceUpdateSerializer,
    VoiceVersionSerializer,
)
from voices.models import FineTuneJob, TrainingRecording, Voice, VoiceVersion
from voices.services import catalogue, datasets, training


class VoiceViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """Voices this tenant may synthesize with (its own and the stock voices), and the
    management of its custom voices: training recordings, dataset report, fine-tunes and
    versions."""

    scoped_model = Voice
    scope_method = "visible_to"
    serializer_class = VoiceSerializer
    filterset_fields = ["kind", "status", "language"]
    lookup_field = "slug"
    parser_classes = [JSONParser, MultiPartParser, FormParser]
    required_scopes = {
        # A synthesize-only key must be able to discover (ready) voices.
        "list": None,
        "retrieve": None,
        "create": Scope.VOICES_WRITE,
        "partial_update": Scope.VOICES_WRITE,
        "destroy": Scope.VOICES_WRITE,
        "recordings": Scope.VOICES_READ,
        "upload_recordings": Scope.VOICES_WRITE,
        "delete_recording": Scope.VOICES_WRITE,
        "dataset": Scope.VOICES_READ,
        "versions": Scope.VOICES_READ,
        "activate_version": Scope.VOICES_WRITE,
        "fine_tunes": Scope.VOICES_READ,
        "start_fine_tune": Scope.VOICES_WRITE,
    }

    def safely_get_queryset(self, queryset):
        if not self.access.has(Scope.VOICES_READ):
            queryset = queryset.filter(status=Voice.Status.READY)
        return queryset.select_related("consent", "active_version").order_by("kind", "slug")

    def _custom(self) -> Voice:
        voice = self.get_object()
        if voice.kind != Voice.Kind.CUSTOM:
            raise NotFound("Stock voices have no training data, versions or fine-tunes.")
        return voice

    @extend_schema(request=VoiceCreateSerializer, responses={201: VoiceSerializer})
    def create(self, request, *args, **kwargs):
        params = VoiceCreateSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        voice = catalogue.create_voice(
            self.access, context=self.audit_context, **params.validated_data
        )
        return Response(VoiceSerializer(voice).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=VoiceUpdateSerializer, responses={200: VoiceSerializer})
    def partial_update(self, request, *args, **kwargs):
        params = VoiceUpdateSerializer(data=request.data, partial=True)
        params.is_valid(raise_exception=True)
        voice = catalogue.update_voice(
            self.access, self._custom(), context=self.audit_context, **params.validated_data
        )
        return Response(VoiceSerializer(voice).data)

    def destroy(self, request, *args, **kwargs):
        catalogue.delete_voice(self.access, self._custom(), context=self.audit_context)
        return Response(status=status.HTTP_204_NO_CONTENT)

    # --- training data ------------------------------------------------------------------
    @extend_schema(responses={200: TrainingRecordingSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def recordings(self, request, *args, **kwargs):
        voice = self._custom()
        rows = TrainingRecording.objects.for_tenant(self.tenant).filter(voice=voice)
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(TrainingRecordingSerializer(page, many=True).data)

    @extend_schema(
        request={"multipart/form-data": TrainingUploadSerializer},
        responses={202: TrainingRecordingSerializer(many=True)},
    )
    @recordings.mapping.post
    def upload_recordings(self, request, *args, **kwargs):
        """Upload one recording with its transcript, or a zip with metadata.csv. Each file is
        checked on a worker; the dataset report shows the outcome per file."""
        voice = self._custom()
        upload = uploaded_file(request)
        head = upload.read(4)
        upload.seek(0)
        # Refused before the body is read into memory (Django spooled it to disk).
        limit = (
            settings.DATASET_MAX_UPLOAD_BYTES
            if head == datasets.ZIP_MAGIC
            else settings.TRAINING_MAX_RECORDING_BYTES
        )
        if upload.size > limit:
            what = "archive" if head == datasets.ZIP_MAGIC else "recording"
            raise datasets.InvalidUpload(
                f"The {what} is larger than {limit} bytes.",
                code="file_too_large",
                status_code=413,
            )
        rows = datasets.upload_file(
            self.access,
            voice,
            data=upload.read(),
            filename=upload.name or "recording",
            transcript=request.data.get("transcript", ""),
            context=self.audit_context,
        )
        return Response(
            TrainingRecordingSerializer(rows, many=True).data, status=status.HTTP_202_ACCEPTED
        )

    @action(detail=True, methods=["delete"], url_path=r"recordings/(?P<recording_id>[0-9a-f-]{36})")
    def delete_recording(self, request, recording_id=None, *args, **kwargs):
        voice = self._custom()
        rec = (
            TrainingRecording.objects.for_tenant(self.tenant)
            .filter(voice=voice, pk=recording_id)
            .first()
        )
        if rec is None:
            raise NotFound()
        datasets.delete_recording(self.access, rec, context=self.audit_context)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["get"])
    def dataset(self, request, *args, **kwargs):
        """Totals and problems of the voice's training recordings."""
        return Response(datasets.dataset_report(self._custom()))

    # --- versions and fine-tunes -----------------------------------------------------------
    @extend_schema(responses={200: VoiceVersionSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def versions(self, request, *args, **kwargs):
        voice = self._custom()
        rows = VoiceVersion.objects.for_tenant(self.tenant).filter(voice=voice)
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(VoiceVersionSerializer(page, many=True).data)

    @extend_schema(request=None, responses={200: VoiceSerializer})
    @action(detail=True, methods=["post"], url_path=r"versions/(?P<number>[0-9]+)/activate")
    def activate_version(self, request, number=None, *args, **kwargs):
        voice = self._custom()
        version = (
            VoiceVersion.objects.for_tenant(self.tenant).filter(voice=voice, number=number).first()
        )
        if version is None:
            raise NotFound()
        voice = catalogue.activate_version(self.access, voice, version, context=self.audit_context)
        return Response(VoiceSerializer(voice).data)

    @extend_schema(responses={200: FineTuneJobSerializer(many=True)})
    @action(detail=True, methods=["get"], url_path="fine-tunes")
    def fine_tunes(self, request, *args, **kwargs):
        voice = self._custom()
        rows = (
            FineTuneJob.objects.for_tenant(self.tenant).filter(voice=voice).order_by("-created_at")
        )
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(FineTuneJobSerializer(page, many=True).data)

    @extend_schema(request=FineTuneStartSerializer, responses={202: FineTuneJobSerializer})
    @fine_tunes.mapping.post
    def start_fine_tune(self, request, *args, **kwargs):
        params = FineTuneStartSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        job = training.start(
            self.access, self._custom(), context=self.audit_context, **params.validated_data
        )
        return Response(FineTuneJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class FineTuneJobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """Fine-tuning jobs: progress (phase, step, loss, percent, ETA), outcome, cancel."""

    scoped_model = FineTuneJob
    serializer_class = FineTuneJobSerializer
    filterset_fields = ["status", "voice"]
    required_scopes = {
        "list": Scope.VOICES_READ,
        "retrieve": Scope.VOICES_READ,
        "cancel": Scope.VOICES_WRITE,
    }

    def safely_get_queryset(self, queryset):
        return queryset.select_related("voice", "version").order_by("-created_at")

    @extend_schema(request=None, responses={200: FineTuneJobSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, *args, **kwargs):
        job = training.cancel(self.access, self.get_object(), context=self.audit_context)
        return Response(FineTuneJobSerializer(job).data)
