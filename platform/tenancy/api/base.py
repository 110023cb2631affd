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
from core import scoping
from core.errors import Unauthorized
from tenancy.models import ApiKey, Tenant
from tenancy.services import ratelimits
from tenancy.services.access import Access, resolve_access
from tenancy.services.errors import InsufficientScope


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

    access: Access
    tenant: Tenant

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "get_queryset" in cls.__dict__:
            raise TypeError(f"{cls.__name__}: implement safely_get_queryset, not get_queryset")

    # --- request set-up -----------------------------------------------------------------
    def dispatch(self, request, *args, **kwargs):
        # Default-manager queries (relation fields, validators, filters) see this request's
        # tenant only, and nothing once the request is over.
        with scoping.tenant_context(None):
            return super().dispatch(request, *args, **kwargs)

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        api_key = request.auth if isinstance(request.auth, ApiKey) else None
        self.access = resolve_access(
            api_key=api_key, user=request.user, slug=kwargs.get("tenant_slug")
        )
        self.tenant = request.tenant = self.access.tenant
        request.membership = self.access.membership
        scoping.activate(self.tenant)
        self.check_scope(request)
        principal = f"key:{api_key.pk}" if api_key else f"user:{request.user.pk}"
        self.rate_limit_headers = ratelimits.enforce(request, self.tenant, principal)

    @property
    def granted_scopes(self) -> frozenset[str]:
        return self.access.scopes

    def required_scope(self, request) -> str | None:
        method = request.method
        if not hasattr(self, method.lower()) or (hasattr(self, "action") and self.action is None):
            raise MethodNotAllowed(method)  # 405 before any scope talk
        action = getattr(self, "action", None)
        if method in ("HEAD", "OPTIONS"):
            # HEAD and OPTIONS answer exactly as GET would (or, without a GET, as the
            # route's first method would), so they reveal nothing GET would not.
            action_map = getattr(self, "action_map", None) or {}
            method = "GET" if hasattr(self, "get") else self.allowed_methods[0]
            action = action_map.get(method.lower(), action if action != "metadata" else None)
        for name in (action, method, "*"):
            if name in self.required_scopes:
                return self.required_scopes[name]
        raise InsufficientScope("This action is not available to API credentials.")

    def check_scope(self, request) -> None:
        self.access.require(self.required_scope(request))

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


class TenantScopedViewSet(TenantScopedMixin, viewsets.GenericViewSet):
    pass


class TenantScopedAPIView(TenantScopedMixin, APIView):
    pass
