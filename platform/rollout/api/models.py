"""Model versions over HTTP: list, retrieve, register, validate, retire.

- `/api/v1/models/`: the platform's versions and this tenant's own (its voices' families).
  `models:read` lists and reads; `models:write` registers versions of its own voices and
  validates or retires them. Platform versions are read-only to tenants.
- `/api/v1/platform/models/`: every version, for signed-in Django staff users (operators),
  who also register and run the stock family's versions.

Every rule is the registry service's (`rollout.services.registry`, with an `Authority`); the
views parse input and shape output.
"""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from core.filters import TenantScopedFilterSet
from core.uploads import read_upload
from rollout.api.permissions import IsStaffOperator
from rollout.models import ModelVersion
from rollout.services import registry
from rollout.services.authority import Authority
from tenancy.api.base import TenantScopedViewSet
from tenancy.roles import Scope


class ModelVersionSerializer(serializers.ModelSerializer):
    owner = serializers.SerializerMethodField()

    class Meta:
        model = ModelVersion
        fields = [
            "id",
            "family",
            "engine",
            "version",
            "semver",
            "artefact_checksum",
            "owner",
            "notes",
            "registered_by",
            "status",
            "validation",
            "validated_at",
            "marked_bad",
            "bad_reason",
            "created_at",
        ]

    def get_owner(self, version) -> str:
        return "platform" if version.is_platform else "tenant"


class RegisterSerializer(serializers.Serializer):
    """Multipart: these fields plus the `artefact` file (and `config`, Piper's .onnx.json)."""

    family = serializers.CharField(max_length=120)
    engine = serializers.CharField(max_length=50, default="piper")
    version = serializers.CharField(max_length=100)
    semver = serializers.CharField(max_length=32, required=False)
    notes = serializers.CharField(required=False, default="", allow_blank=True)
    artefact = serializers.FileField(required=False, help_text="the model file")
    config = serializers.FileField(required=False, help_text="Piper's .onnx.json")


class ModelVersionFilter(TenantScopedFilterSet):
    class Meta:
        model = ModelVersion
        fields = ["family", "status", "engine"]


class VersionActions:
    """The endpoints; subclasses say who the caller is (`authority`)."""

    serializer_class = ModelVersionSerializer
    filterset_class = ModelVersionFilter
    parser_classes = [MultiPartParser, FormParser, JSONParser]
    lookup_value_regex = "[^/]+"  # ids contain ':' and '@'

    def authority(self) -> Authority:
        raise NotImplementedError

    def _version(self) -> ModelVersion:
        return registry.get_version(self.authority(), self.kwargs["pk"])

    def _answer(self, version: ModelVersion, code=status.HTTP_200_OK) -> Response:
        return Response(ModelVersionSerializer(version).data, status=code)

    def retrieve(self, request, *args, **kwargs):
        return self._answer(self._version())

    @extend_schema(
        request={"multipart/form-data": RegisterSerializer},
        responses={201: ModelVersionSerializer, 200: ModelVersionSerializer},
    )
    def create(self, request, *args, **kwargs):
        # The files are read (size-limited) below; the serializer checks the other fields.
        fields = {k: request.data[k] for k in request.data if k not in request.FILES}
        params = RegisterSerializer(data=fields)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        artefact = read_upload(request, settings.MODEL_ARTEFACT_MAX_BYTES, "artefact")
        config = (
            read_upload(request, settings.MODEL_ARTEFACT_MAX_BYTES, "config")
            if "config" in request.FILES
            else None
        )
        version, created = registry.register_version(
            self.authority(),
            family=data["family"],
            engine=data["engine"],
            version=data["version"],
            semver=data.get("semver"),
            artefact=artefact,
            config=config,
            notes=data["notes"],
        )
        return self._answer(version, status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(request=None, responses={202: ModelVersionSerializer})
    @action(detail=True, methods=["post"])
    def validate(self, request, *args, **kwargs):
        version = registry.request_validation(self.authority(), self._version())
        return self._answer(version, status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={200: ModelVersionSerializer})
    @action(detail=True, methods=["post"])
    def retire(self, request, *args, **kwargs):
        return self._answer(registry.retire(self.authority(), self._version()))


class ModelVersionViewSet(
    VersionActions, mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet
):
    """Platform model versions and this tenant's own."""

    scoped_model = ModelVersion
    scope_method = "visible_to"
    required_scopes = {
        "list": Scope.MODELS_READ,
        "retrieve": Scope.MODELS_READ,
        "create": Scope.MODELS_WRITE,
        "validate": Scope.MODELS_WRITE,
        "retire": Scope.MODELS_WRITE,
    }

    def safely_get_queryset(self, queryset):
        return queryset.order_by("family", "-created_at")

    def authority(self) -> Authority:
        return Authority.for_access(self.access, self.audit_context)


class PlatformModelVersionViewSet(
    VersionActions, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Every model version, for platform operators."""

    permission_classes = [IsStaffOperator]

    def get_queryset(self):
        return ModelVersion.dangerously_unscoped.order_by("family", "-created_at")

    def authority(self) -> Authority:
        return Authority.operator(
            user=self.request.user, request_id=getattr(self.request, "request_id", "")
        )
