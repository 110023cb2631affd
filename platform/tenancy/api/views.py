from datetime import timedelta

import django_filters
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, PolymorphicProxySerializer, extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from core.filters import TenantScopedFilterSet
from tenancy.api.base import TenantScopedAPIView, TenantScopedViewSet
from tenancy.api.serializers import (
    ApiKeySerializer,
    ApiKeyUpdateSerializer,
    IssuedApiKeySerializer,
    IssuedInvitationSerializer,
    MembershipCreateSerializer,
    MembershipSerializer,
    RotateSerializer,
    TenantSerializer,
    TenantUpdateSerializer,
    UsageQuerySerializer,
    UsageResponseSerializer,
)
from tenancy.models import ApiKey, Membership
from tenancy.roles import Scope
from tenancy.services import keys, quotas, tenants, usage


def _issued(issued: keys.IssuedKey) -> dict:
    data = IssuedApiKeySerializer(issued.key).data
    data["key"] = issued.token
    return data


class ApiKeyFilter(TenantScopedFilterSet):
    status = django_filters.ChoiceFilter(
        choices=[(s, s) for s in keys.KEY_STATUSES], method="filter_status"
    )
    name = django_filters.CharFilter(lookup_expr="icontains")

    class Meta:
        model = ApiKey
        fields = ["status", "name"]

    def filter_status(self, queryset, name, value):
        return keys.filter_by_status(queryset, value)


class ApiKeyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """API keys of the tenant. The secret is returned once, at creation or rotation."""

    scoped_model = ApiKey
    serializer_class = ApiKeySerializer
    filterset_class = ApiKeyFilter
    required_scopes = {
        "list": Scope.KEYS_READ,
        "retrieve": Scope.KEYS_READ,
        "create": Scope.KEYS_WRITE,
        "partial_update": Scope.KEYS_WRITE,
        "destroy": Scope.KEYS_WRITE,
        "revoke": Scope.KEYS_WRITE,
        "rotate": Scope.KEYS_WRITE,
    }

    def safely_get_queryset(self, queryset):
        return queryset.select_related("rotated_to").order_by("-created_at")

    @extend_schema(responses={201: IssuedApiKeySerializer})
    def create(self, request, *args, **kwargs):
        serializer = ApiKeySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        issued = keys.create_key(
            self.access,
            context=self.audit_context,
            created_by=request.user if request.user else None,
            **serializer.validated_data,
        )
        return Response(_issued(issued), status=status.HTTP_201_CREATED)

    @extend_schema(request=ApiKeyUpdateSerializer, responses={200: ApiKeySerializer})
    def partial_update(self, request, *args, **kwargs):
        params = ApiKeyUpdateSerializer(data=request.data, partial=True)
        params.is_valid(raise_exception=True)
        key = keys.update_key(
            self.access, self.get_object(), context=self.audit_context, **params.validated_data
        )
        return Response(ApiKeySerializer(key).data)

    @extend_schema(responses={204: OpenApiResponse(description="Revoked")})
    def destroy(self, request, *args, **kwargs):
        keys.revoke_key(self.access, self.get_object(), context=self.audit_context)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={200: ApiKeySerializer})
    @action(detail=True, methods=["post"])
    def revoke(self, request, *args, **kwargs):
        key = keys.revoke_key(self.access, self.get_object(), context=self.audit_context)
        return Response(ApiKeySerializer(key).data)

    @extend_schema(request=RotateSerializer, responses={201: IssuedApiKeySerializer})
    @action(detail=True, methods=["post"])
    def rotate(self, request, *args, **kwargs):
        params = RotateSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        issued = keys.rotate_key(
            self.access,
            self.get_object(),
            grace=timedelta(seconds=params.validated_data["grace_seconds"]),
            context=self.audit_context,
            created_by=request.user if request.user else None,
        )
        return Response(_issued(issued), status=status.HTTP_201_CREATED)


class MembershipViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    scoped_model = Membership
    serializer_class = MembershipSerializer
    filterset_fields = ["role"]
    required_scopes = {
        "list": Scope.MEMBERS_READ,
        "retrieve": Scope.MEMBERS_READ,
        "create": Scope.MEMBERS_WRITE,
        "partial_update": Scope.MEMBERS_WRITE,
        "destroy": Scope.MEMBERS_WRITE,
    }

    def safely_get_queryset(self, queryset):
        return queryset.select_related("user").order_by("created_at")

    @extend_schema(
        request=MembershipCreateSerializer,
        responses={
            201: PolymorphicProxySerializer(
                component_name="MemberOrInvitation",
                serializers=[MembershipSerializer, IssuedInvitationSerializer],
                resource_type_field_name=None,
            )
        },
    )
    def create(self, request, *args, **kwargs):
        """An existing user is added; any other email is invited (the response then has
        `"invitation": true` and the one-time `accept_url`, shown to the inviter only)."""
        params = MembershipCreateSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        result = tenants.invite_member(
            self.access,
            params.validated_data["email"],
            params.validated_data["role"],
            context=self.audit_context,
            base_url=request.build_absolute_uri("/"),
        )
        if result.membership is not None:
            data = MembershipSerializer(result.membership).data
        else:
            data = IssuedInvitationSerializer(result.invitation).data
            data["accept_url"] = request.build_absolute_uri(result.accept_url)
        return Response(data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        params = MembershipSerializer(data=request.data, partial=True)
        params.is_valid(raise_exception=True)
        if "role" not in params.validated_data:
            return Response(MembershipSerializer(self.get_object()).data)
        membership = tenants.change_role(
            self.access,
            self.get_object(),
            params.validated_data["role"],
            context=self.audit_context,
        )
        return Response(MembershipSerializer(membership).data)

    def destroy(self, request, *args, **kwargs):
        tenants.remove_member(self.access, self.get_object(), context=self.audit_context)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TenantView(TenantScopedAPIView):
    """The caller's tenant, its plan and this month's quota."""

    required_scopes = {"GET": None, "PATCH": Scope.ADMIN}

    @extend_schema(responses=TenantSerializer)
    def get(self, request, *args, **kwargs):
        return Response(self._data(request))

    @extend_schema(request=TenantUpdateSerializer, responses=TenantSerializer)
    def patch(self, request, *args, **kwargs):
        """Change the tenant's name or legal name (owners, admins and admin keys)."""
        params = TenantUpdateSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        tenants.update_tenant_profile(
            self.access, context=self.audit_context, **params.validated_data
        )
        return Response(self._data(request))

    def _data(self, request) -> dict:
        data = TenantSerializer(self.tenant).data
        key = request.auth if isinstance(request.auth, ApiKey) else None
        data["quota"] = quotas.usage_summary(self.tenant)
        if key is not None and key.monthly_character_limit is not None:
            data["key_quota"] = quotas.usage_summary(self.tenant, key)
        if Scope.ADMIN in self.granted_scopes:
            data["webhook_signing_secret"] = tenants.webhook_signing_secret(self.tenant)
        return data


class UsageView(TenantScopedAPIView):
    """Usage totals per day, key, voice or model version; `format=csv` downloads CSV."""

    required_scopes = {"GET": Scope.USAGE_READ}

    @extend_schema(
        parameters=[UsageQuerySerializer],
        responses={200: UsageResponseSerializer, (200, "text/csv"): OpenApiTypes.STR},
    )
    def get(self, request, *args, **kwargs):
        params = UsageQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        query = params.validated_data
        group_by = query["group_by"]
        api_key = usage.tenant_key(self.tenant, query.get("api_key"))
        rows = usage.usage_rows(
            self.tenant,
            group_by=group_by,
            start=query.get("start"),
            end=query.get("end"),
            api_key_id=api_key.pk if api_key else None,
            voice=query.get("voice"),
        )
        if query["format"] == "csv":
            response = HttpResponse(usage.rows_to_csv(rows, group_by), content_type="text/csv")
            response["Content-Disposition"] = f'attachment; filename="usage-{group_by}.csv"'
            return response
        return Response(
            {"group_by": group_by, "results": rows, "quota": quotas.usage_summary(self.tenant)}
        )
