"""Native synthesis API: POST /api/v1/synthesize and the job resource."""

from __future__ import annotations

import django_filters
from django.http import HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from core.errors import Conflict
from core.filters import TenantScopedFilterSet
from speech import audio
from synthesis import channels, services
from synthesis.api.serializers import SynthesisRequestSerializer, SynthesizeSerializer
from synthesis.models import SynthesisRequest
from synthesis.webhooks import check_url
from tenancy.api.base import TenantScopedAPIView, TenantScopedViewSet
from tenancy.roles import Scope


def submit_from(view, params: services.SynthesisParams) -> SynthesisRequest:
    request = view.request
    if params.webhook_url:
        check_url(params.webhook_url)
    return services.submit_as(view.access, params, request.request_id)


def streaming_response(job: SynthesisRequest) -> HttpResponse:
    """Stream the worker's chunks; a failure before the first byte is a normal error."""
    messages = channels.get_channel().consume(str(job.pk), services.stream_timeout())
    try:
        first = next(messages)
    except channels.ChannelTimeout:
        # No worker answered: fail and refund, then answer like a sync request would (the
        # job may also have finished just now).
        return finished_response(services.time_out(job), "audio")
    if first.kind == channels.END:
        job.refresh_from_db()
        raise services.failure_error(job)

    def body():
        yield first.data
        try:
            for message in messages:
                if message.kind == channels.CHUNK:
                    yield message.data
        except channels.ChannelTimeout:
            services.time_out(job)
            raise  # the status line is sent: break the connection so the client sees it

    response = StreamingHttpResponse(body(), content_type=audio.CONTENT_TYPES[job.format])
    for name, value in services.job_headers(job).items():
        response[name] = value
    return response


def finished_response(
    job: SynthesisRequest, delivery: str, audio_data: bytes | None = None
) -> HttpResponse:
    """The finished request's answer; `audio_data`, when the worker handed it over, spares the
    read back from storage."""
    if job.status != SynthesisRequest.Status.SUCCEEDED:
        raise services.failure_error(job)
    if delivery == "url":
        data = SynthesisRequestSerializer(job).data
        data["audio_url"] = services.download_url(job)
        response = Response(data)
    else:
        if audio_data is None:
            audio_data = services.audio_bytes(job)
        response = HttpResponse(audio_data, content_type=audio.CONTENT_TYPES[job.format])
        response["Content-Disposition"] = (
            f'inline; filename="{job.pk}.{audio.FILE_EXTENSIONS[job.format]}"'
        )
    response["X-Audio-Duration"] = str(job.audio_seconds)
    for name, value in services.job_headers(job).items():
        response[name] = value
    return response


class SynthesizeView(TenantScopedAPIView):
    """Turn text into speech. `mode`: `sync` (audio, or JSON with a URL when
    `delivery=url`), `stream` (chunked audio as sentences complete) or `async` (202 + job)."""

    required_scopes = {"POST": Scope.SYNTHESIZE}

    @extend_schema(
        request=SynthesizeSerializer,
        parameters=[
            OpenApiParameter(
                "X-End-User-Id",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                description="Your end user's id (at most 128 printable characters): they "
                "hear the same model version across calls during a rollout.",
            )
        ],
        responses={
            (200, "audio/*"): OpenApiTypes.BINARY,
            (200, "application/json"): SynthesisRequestSerializer,
            202: SynthesisRequestSerializer,
        },
    )
    def post(self, request, *args, **kwargs):
        params = SynthesizeSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        job = submit_from(
            self,
            services.SynthesisParams(
                voice=data["voice"],
                text=data["text"],
                format=data["format"],
                sample_rate=data.get("sample_rate"),
                mode=data["mode"],
                controls=params.controls(),
                webhook_url=data.get("webhook_url", ""),
                end_user=request.headers.get("X-End-User-Id", ""),
                model_version=data.get("model_version", ""),
            ),
        )
        if job.mode == SynthesisRequest.Mode.ASYNC:
            response = Response(
                SynthesisRequestSerializer(job).data, status=status.HTTP_202_ACCEPTED
            )
            response["Location"] = f"/api/v1/synthesis-requests/{job.pk}"
            for name, value in services.job_headers(job).items():
                response[name] = value
            return response
        if job.mode == SynthesisRequest.Mode.STREAM:
            return streaming_response(job)
        job, audio_data = services.wait_for_result(job)
        return finished_response(job, data["delivery"], audio_data)


class SynthesisRequestFilter(TenantScopedFilterSet):
    since = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = SynthesisRequest
        fields = ["status", "mode", "voice_slug", "model_version", "api_key", "request_id"]


class SynthesisRequestViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet
):
    """Synthesis jobs: poll an async job, fetch its audio, list history."""

    scoped_model = SynthesisRequest
    serializer_class = SynthesisRequestSerializer
    filterset_class = SynthesisRequestFilter
    required_scopes = {
        "list": Scope.USAGE_READ,
        "retrieve": Scope.SYNTHESIZE,
        "audio": Scope.SYNTHESIZE,
    }

    def safely_get_queryset(self, queryset):
        return queryset.order_by("-created_at")

    def retrieve(self, request, *args, **kwargs):
        job = self.get_object()
        data = SynthesisRequestSerializer(job).data
        if job.status == SynthesisRequest.Status.SUCCEEDED:
            data["audio_url"] = services.download_url(job)
        return Response(data, headers=services.job_headers(job))

    @extend_schema(responses={302: OpenApiResponse(description="Redirect to the audio")})
    @action(detail=True, methods=["get"])
    def audio(self, request, *args, **kwargs):
        job = self.get_object()
        if job.status == SynthesisRequest.Status.FAILED:
            raise services.failure_error(job)
        if job.status != SynthesisRequest.Status.SUCCEEDED:
            raise Conflict("The audio is not ready yet.", code="not_ready")
        return HttpResponseRedirect(services.download_url(job), headers=services.job_headers(job))
