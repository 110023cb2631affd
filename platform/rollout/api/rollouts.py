"""Rollouts, the rollout policy, pins and per-version metrics over HTTP.

- `/api/v1/rollouts/`: a tenant's own voices' rollouts, which it runs (`models:write`), and
  the platform's, which it may read (`models:read`) but only operators run.
- `/api/v1/platform/rollouts/`: every rollout, for signed-in Django staff users (operators).
- `/api/v1/rollout-policy`, `/api/v1/pins`: what the tenant chose.
- `/api/v1/rollouts/<id>/metrics`, `/api/v1/models/<id>/metrics`: versions side by side.

Views parse and serialize; the rules (who may do what, what is visible) are the services'.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import NotFound
from core.filters import TenantScopedFilterSet
from rollout.api.permissions import IsStaffOperator
from rollout.models import ModelVersion, Rollout, RolloutDecision, VersionPin
from rollout.services import lifecycle, policy, window
from rollout.services.authority import Authority
from rollout.services.resolution import UnknownVersion
from tenancy.api.base import TenantScopedAPIView, TenantScopedViewSet
from tenancy.roles import Scope

WINDOW_PARAMETERS = [
    OpenApiParameter("since", OpenApiTypes.DATETIME, description="Window start (ISO 8601)"),
    OpenApiParameter("until", OpenApiTypes.DATETIME, description="Window end (default: now)"),
]


class StrictSerializer(serializers.Serializer):
    """Unknown fields are an error, not silently ignored."""

    def validate(self, attrs):
        unknown = sorted(set(self.initial_data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError({name: "Unknown field." for name in unknown})
        return attrs


# Serializers -------------------------------------------------------------------------------


class DecisionSerializer(serializers.ModelSerializer):
    evidence = serializers.SerializerMethodField()

    class Meta:
        model = RolloutDecision
        fields = [
            "id",
            "action",
            "automatic",
            "actor",
            "outcome",
            "step_index",
            "percent_before",
            "percent_after",
            "reason",
            "evidence",
            "created_at",
        ]

    def get_evidence(self, decision) -> dict:
        return lifecycle.visible_evidence(self.context["authority"], decision.evidence)


class RolloutSerializer(serializers.ModelSerializer):
    platform = serializers.BooleanField(source="is_platform", read_only=True)
    targeting = serializers.SerializerMethodField()

    class Meta:
        model = Rollout
        fields = [
            "id",
            "family",
            "platform",
            "candidate",
            "stable",
            "state",
            "on_fail",
            "steps",
            "step_index",
            "percent",
            "min_step_duration_s",
            "min_requests",
            "min_quality_samples",
            "max_extensions",
            "extensions",
            "quality_sample_rate",
            "tenant_min_requests",
            "alpha",
            "hold_reason",
            "retry_of",
            "targeting",
            "created_by",
            "created_at",
            "step_started_at",
            "last_evaluated_at",
            "ended_at",
        ]

    def get_targeting(self, rollout) -> dict:
        return lifecycle.visible_targeting(self.context["authority"], rollout)


class RolloutDetailSerializer(RolloutSerializer):
    decisions = serializers.SerializerMethodField()

    class Meta(RolloutSerializer.Meta):
        fields = [*RolloutSerializer.Meta.fields, "decisions"]

    def get_decisions(self, rollout) -> list[dict]:
        return DecisionSerializer(rollout.decisions.all(), many=True, context=self.context).data


class RolloutCreateSerializer(StrictSerializer):
    candidate = serializers.CharField(max_length=200)
    steps = serializers.ListField(child=serializers.FloatField(), required=False)
    on_fail = serializers.ChoiceField(choices=Rollout.OnFail.choices, required=False)
    min_step_duration_s = serializers.IntegerField(min_value=0, required=False)
    min_requests = serializers.IntegerField(min_value=0, required=False)
    min_quality_samples = serializers.IntegerField(min_value=0, required=False)
    max_extensions = serializers.IntegerField(min_value=0, max_value=100, required=False)
    quality_sample_rate = serializers.FloatField(min_value=0, max_value=1, required=False)
    tenant_min_requests = serializers.IntegerField(min_value=0, required=False)
    alpha = serializers.FloatField(min_value=0.0001, max_value=0.5, required=False)
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True)


class RolloutReasonSerializer(StrictSerializer):
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True)


class PromoteSerializer(RolloutReasonSerializer):
    complete = serializers.BooleanField(default=False)


class TargetingSerializer(RolloutReasonSerializer):
    include_all_tenants = serializers.BooleanField(required=False)
    included_tenants = serializers.ListField(child=serializers.CharField(), required=False)
    excluded_tenants = serializers.ListField(child=serializers.CharField(), required=False)


class RolloutFilter(TenantScopedFilterSet):
    class Meta:
        model = Rollout
        fields = ["state", "family"]


# Rollouts ------------------------------------------------------------------------------------


class RolloutActions:
    """The rollout endpoints; subclasses say who the caller is (`authority`) and which
    candidates it may name (`candidate_for`)."""

    filterset_class = RolloutFilter

    def authority(self) -> Authority:
        raise NotImplementedError

    def candidate_for(self, version_id: str) -> ModelVersion:
        raise NotImplementedError

    def _rollout(self) -> Rollout:
        return lifecycle.get_rollout(self.authority(), self.kwargs["pk"])

    def _body(self, serializer_class):
        body = serializer_class(data=self.request.data)
        body.is_valid(raise_exception=True)
        return body.validated_data

    def _answer(self, rollout: Rollout, code=status.HTTP_200_OK) -> Response:
        data = RolloutDetailSerializer(rollout, context={"authority": self.authority()}).data
        return Response(data, status=code)

    @extend_schema(responses=RolloutSerializer(many=True))
    def list(self, request, *args, **kwargs):
        rollouts = self.filter_queryset(lifecycle.list_rollouts(self.authority()))
        page = self.paginate_queryset(rollouts)
        data = RolloutSerializer(page, many=True, context={"authority": self.authority()}).data
        return self.get_paginated_response(data)

    @extend_schema(request=RolloutCreateSerializer, responses={201: RolloutDetailSerializer})
    def create(self, request, *args, **kwargs):
        data = dict(self._body(RolloutCreateSerializer))
        candidate = self.candidate_for(data.pop("candidate"))
        reason = data.pop("reason", "")
        steps = data.pop("steps", None)
        rollout = lifecycle.start(self.authority(), candidate, steps=steps, reason=reason, **data)
        return self._answer(rollout, status.HTTP_201_CREATED)

    @extend_schema(responses=RolloutDetailSerializer)
    def retrieve(self, request, *args, **kwargs):
        return self._answer(self._rollout())

    @extend_schema(request=RolloutReasonSerializer, responses=RolloutDetailSerializer)
    @action(detail=True, methods=["post"])
    def pause(self, request, *args, **kwargs):
        reason = self._body(RolloutReasonSerializer).get("reason", "")
        return self._answer(lifecycle.pause(self.authority(), self._rollout(), reason))

    @extend_schema(request=RolloutReasonSerializer, responses=RolloutDetailSerializer)
    @action(detail=True, methods=["post"])
    def resume(self, request, *args, **kwargs):
        reason = self._body(RolloutReasonSerializer).get("reason", "")
        return self._answer(lifecycle.resume(self.authority(), self._rollout(), reason))

    @extend_schema(request=PromoteSerializer, responses=RolloutDetailSerializer)
    @action(detail=True, methods=["post"])
    def promote(self, request, *args, **kwargs):
        body = self._body(PromoteSerializer)
        rollout = lifecycle.promote(
            self.authority(),
            self._rollout(),
            body.get("reason", ""),
            complete=body["complete"],
        )
        return self._answer(rollout)

    @extend_schema(request=RolloutReasonSerializer, responses=RolloutDetailSerializer)
    @action(detail=True, methods=["post"])
    def rollback(self, request, *args, **kwargs):
        reason = self._body(RolloutReasonSerializer).get("reason", "")
        return self._answer(lifecycle.rollback(self.authority(), self._rollout(), reason))

    @extend_schema(request=RolloutReasonSerializer, responses={201: RolloutDetailSerializer})
    @action(detail=True, methods=["post"])
    def retry(self, request, *args, **kwargs):
        """A new attempt of a rolled-back rollout; the reason (required) is audited."""
        reason = self._body(RolloutReasonSerializer).get("reason", "")
        fresh = lifecycle.retry(self.authority(), self._rollout(), reason)
        return self._answer(fresh, status.HTTP_201_CREATED)

    @extend_schema(request=TargetingSerializer, responses=RolloutDetailSerializer)
    @action(detail=True, methods=["post"])
    def targeting(self, request, *args, **kwargs):
        body = dict(self._body(TargetingSerializer))
        reason = body.pop("reason", "")
        rollout = lifecycle.set_targeting(self.authority(), self._rollout(), reason=reason, **body)
        return self._answer(rollout)

    @extend_schema(parameters=WINDOW_PARAMETERS, responses=OpenApiTypes.OBJECT)
    @action(detail=True, methods=["get"])
    def metrics(self, request, *args, **kwargs):
        """Candidate and stable side by side over the window (default: the current step),
        on the caller's visible traffic."""
        metrics = window.rollout_metrics_for(
            self.authority(),
            self._rollout(),
            request.query_params.get("since"),
            request.query_params.get("until"),
        )
        return Response(metrics)


ROLLOUT_SCOPES = {
    "list": Scope.MODELS_READ,
    "retrieve": Scope.MODELS_READ,
    "metrics": Scope.MODELS_READ,
    "create": Scope.MODELS_WRITE,
    "pause": Scope.MODELS_WRITE,
    "resume": Scope.MODELS_WRITE,
    "promote": Scope.MODELS_WRITE,
    "rollback": Scope.MODELS_WRITE,
    "retry": Scope.MODELS_WRITE,
    "targeting": Scope.MODELS_WRITE,
}


class RolloutViewSet(RolloutActions, TenantScopedViewSet):
    """A tenant's view: its own voices' rollouts (which it runs) and the platform's (read)."""

    scoped_model = Rollout
    scope_method = "visible_to"
    serializer_class = RolloutSerializer
    required_scopes = ROLLOUT_SCOPES

    def authority(self) -> Authority:
        return Authority.for_access(self.access, self.audit_context)

    def candidate_for(self, version_id: str) -> ModelVersion:
        version = ModelVersion.objects.visible_to(self.tenant).filter(pk=version_id).first()
        if version is None:
            raise UnknownVersion(f"Model version {version_id!r} is not one of yours.")
        return version


class OperatorMixin:
    permission_classes = [IsStaffOperator]

    def authority(self) -> Authority:
        return Authority.operator(user=self.request.user, request_id=self.request.request_id)


class PlatformRolloutViewSet(OperatorMixin, RolloutActions, viewsets.GenericViewSet):
    """Every rollout, for platform operators."""

    queryset = Rollout.dangerously_unscoped.none()  # rows come from the services
    serializer_class = RolloutSerializer

    def candidate_for(self, version_id: str) -> ModelVersion:
        version = ModelVersion.dangerously_unscoped.filter(pk=version_id).first()
        if version is None:
            raise UnknownVersion(f"Unknown model version {version_id!r}.")
        return version


# Per-version metrics -------------------------------------------------------------------------


class VersionMetrics:
    def metrics_for(self, version: ModelVersion, tenant_ids) -> Response:
        params = self.request.query_params
        since, until = window.parse_window(
            params.get("since"), params.get("until"), window.DEFAULT_VERSION_WINDOW
        )
        stable = lifecycle.stable_of(version.family)
        return Response(window.version_metrics(version, stable, since, until, tenant_ids))


class ModelMetricsView(VersionMetrics, TenantScopedAPIView):
    """One version beside its family's stable version over the window (default: the last
    24 h), on this tenant's traffic."""

    required_scopes = {"GET": Scope.MODELS_READ}

    @extend_schema(parameters=WINDOW_PARAMETERS, responses=OpenApiTypes.OBJECT)
    def get(self, request, *args, version_id: str, **kwargs):
        version = ModelVersion.objects.visible_to(self.tenant).filter(pk=version_id).first()
        if version is None:
            raise NotFound()
        return self.metrics_for(version, [self.tenant.pk])


class PlatformModelMetricsView(OperatorMixin, VersionMetrics, APIView):
    """The same, on everybody's traffic, for operators."""

    @extend_schema(parameters=WINDOW_PARAMETERS, responses=OpenApiTypes.OBJECT)
    def get(self, request, *args, version_id: str, **kwargs):
        version = ModelVersion.dangerously_unscoped.filter(pk=version_id).first()
        if version is None:
            raise NotFound()
        return self.metrics_for(version, None)


# Policy and pins -----------------------------------------------------------------------------


class RolloutPolicySerializer(StrictSerializer):
    early_access = serializers.BooleanField(required=False)
    allow_explicit_versions = serializers.BooleanField(required=False)
    updated_at = serializers.DateTimeField(read_only=True)


class RolloutPolicyView(TenantScopedAPIView):
    """The tenant's rollout policy: early access to platform candidates, and whether its keys
    may ask for explicit model versions."""

    required_scopes = {"GET": Scope.MODELS_READ, "PATCH": Scope.MODELS_WRITE}

    def _authority(self) -> Authority:
        return Authority.for_access(self.access, self.audit_context)

    @extend_schema(responses=RolloutPolicySerializer)
    def get(self, request, *args, **kwargs):
        return Response(
            RolloutPolicySerializer(policy.get_policy(self._authority(), self.tenant)).data
        )

    @extend_schema(request=RolloutPolicySerializer, responses=RolloutPolicySerializer)
    def patch(self, request, *args, **kwargs):
        body = RolloutPolicySerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        updated = policy.update_policy(self._authority(), self.tenant, **body.validated_data)
        return Response(RolloutPolicySerializer(updated).data)


class PinSerializer(serializers.ModelSerializer):
    class Meta:
        model = VersionPin
        fields = ["id", "family", "version", "created_by", "created_at"]


class PinCreateSerializer(StrictSerializer):
    version = serializers.CharField(max_length=200)
    family = serializers.CharField(max_length=120, required=False)


class PinViewSet(TenantScopedViewSet):
    """Pins: the tenant hears exactly this version of a family, whatever rollouts do."""

    scoped_model = VersionPin
    serializer_class = PinSerializer
    filterset_fields = ["family"]
    required_scopes = {
        "list": Scope.MODELS_READ,
        "retrieve": Scope.MODELS_READ,
        "create": Scope.MODELS_WRITE,
        "destroy": Scope.MODELS_WRITE,
    }

    def _authority(self) -> Authority:
        return Authority.for_access(self.access, self.audit_context)

    def list(self, request, *args, **kwargs):
        pins = self.filter_queryset(policy.list_pins(self._authority(), self.tenant))
        page = self.paginate_queryset(pins)
        return self.get_paginated_response(PinSerializer(page, many=True).data)

    def retrieve(self, request, *args, pk=None, **kwargs):
        return Response(PinSerializer(policy.get_pin(self._authority(), self.tenant, pk)).data)

    @extend_schema(request=PinCreateSerializer, responses={201: PinSerializer})
    def create(self, request, *args, **kwargs):
        body = PinCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        pinned = policy.pin(self._authority(), self.tenant, data["version"], data.get("family"))
        return Response(PinSerializer(pinned).data, status=status.HTTP_201_CREATED)

    def destroy(self, request, *args, pk=None, **kwargs):
        authority = self._authority()
        policy.unpin(authority, self.tenant, policy.get_pin(authority, self.tenant, pk))
        return Response(status=status.HTTP_204_NO_CONTENT)
