"""Base classes for every tenant-scoped API view.

The tenant comes from the credential (an API key's tenant) or from the URL
(`/api/v1/tenants/<slug>/...`, for signed-in members), never from mutable user state. Another
tenant's objects are 404s. Subclasses may not override `get_queryset`; they implement
`safely_get_queryset`, which receives a queryset already scoped to the tenant.
"""

from __future__ import annotations

from rest_framework import permissions, viewsets
from rest_framework.exceptions import MethodNotAllowed
from rest_framework.views import APIView

from audit.services import RequestContext, context_from_request
from core.errors import NotFound, Unauthorized
from tenancy.models import ApiKey, Tenant
from tenancy.roles import expand
from tenancy.services import ratelimits, tenants
from tenancy.services.errors import InsufficientScope, TenantSuspended


class IsAuthenticatedPrincipal(permissions.BasePermission):
    """An API key or a signed-in user."""

    def has_permission(self, request, view) -> bool:
        if isinstance(request.auth, ApiKey):
            return True
        if request.user is not None and request.user.is_authenticated:
            return True
        raise Unauthorized()


class TenantScopedMixin:
    # action name or HTTP method -> required scope; "*" is the fallback. Unmapped = refused.
    required_scopes: dict[str, str | None] = {}
    scoped_model = None
    # The manager method that scopes rows to the tenant; voices use "visible_to" (own + stock).
    scope_method = "for_tenant"
    permission_classes = [IsAuthenticatedPrincipal]

    tenant: Tenant
    granted_scopes: frozenset[str]

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "get_queryset" in cls.__dict__:
            raise TypeError(f"{cls.__name__}: implement safely_get_queryset, not get_queryset")

    # --- request set-up -----------------------------------------------------------------
    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        self.tenant, self.granted_scopes = self.resolve_tenant(request, kwargs.get("tenant_slug"))
        request.tenant = self.tenant
        self.check_scope(request)
        principal = (
            f"key:{request.auth.pk}"
            if isinstance(request.auth, ApiKey)
            else (f"user:{request.user.pk}")
        )
        self.rate_limit_headers = ratelimits.enforce(request, self.tenant, principal)

    @staticmethod
    def resolve_tenant(request, slug: str | None) -> tuple[Tenant, frozenset[str]]:
        if isinstance(request.auth, ApiKey):
            tenant = request.auth.tenant
            if slug is not None and slug != tenant.slug:
                raise NotFound()
            granted = expand(request.auth.scopes)
        else:
            if slug is None:
                # Members address a tenant explicitly: /api/v1/tenants/<slug>/...
                raise NotFound("Use /api/v1/tenants/<slug>/ with a signed-in session.")
            tenant = Tenant.objects.select_related("plan").filter(slug=slug).first()
            membership = tenants.membership_for(request.user, tenant) if tenant else None
            if membership is None:
                raise NotFound()
            granted = tenants.ROLE_SCOPES[membership.role]
            request.membership = membership
        if not tenant.is_active:
            raise TenantSuspended()
        return tenant, granted

    def required_scope(self, request) -> str | None:
        if not hasattr(self, request.method.lower()) or (
            hasattr(self, "action") and self.action is None
        ):
            raise MethodNotAllowed(request.method)  # 405 before any scope talk
        action = getattr(self, "action", None)
        for name in (action, request.method, "*"):
            if name in self.required_scopes:
                return self.required_scopes[name]
        raise InsufficientScope("This action is not available to API credentials.")

    def check_scope(self, request) -> None:
        required = self.required_scope(request)
        if required is not None and required not in self.granted_scopes:
            raise InsufficientScope(f"This action requires the '{required}' scope.")

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        for name, value in getattr(self, "rate_limit_headers", {}).items():
            response.setdefault(name, value)
        return response

    # --- queryset chokepoint ------------------------------------------------------------
    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no request, no rows
            return self.scoped_model.dangerously_unscoped.none()
        scoped = getattr(self.scoped_model.objects, self.scope_method)(self.tenant)
        return self.safely_get_queryset(scoped)

    def safely_get_queryset(self, queryset):
        return queryset

    @property
    def audit_context(self) -> RequestContext:
        return context_from_request(self.request)

    @property
    def acting_role(self) -> str | None:
        membership = getattr(self.request, "membership", None)
        if membership is not None:
            return membership.role
        # An admin-scoped key acts as an admin, never as an owner.
        return "admin"


class TenantScopedViewSet(TenantScopedMixin, viewsets.GenericViewSet):
    pass


class TenantScopedAPIView(TenantScopedMixin, APIView):
    pass
