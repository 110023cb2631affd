"""The one chokepoint that scopes tenant-owned rows.

A tenant-owned model's `objects` manager refuses to build a queryset until it is given a
tenant: `Voice.objects.for_tenant(tenant)`. Forgetting the tenant is an error, never a leak.
Code that must see every tenant (workers looking a row up by id, operator commands) uses the
`dangerously_unscoped` manager, so a reviewer can grep for it.
"""

from __future__ import annotations

from django.db import models


class TenantScopeError(RuntimeError):
    pass


class TenantScopedManager(models.Manager):
    def get_queryset(self):
        raise TenantScopeError(
            f"{self.model.__name__}.objects needs a tenant: use .for_tenant(tenant), or "
            "dangerously_unscoped where crossing tenants is intended."
        )

    def none(self) -> models.QuerySet:
        # An empty queryset shows nothing, so it needs no tenant (schema generation uses it).
        return super().get_queryset().none()

    def for_tenant(self, tenant) -> models.QuerySet:
        if tenant is None or getattr(tenant, "pk", tenant) is None:
            raise TenantScopeError(f"No tenant given to scope {self.model.__name__}.")
        return super().get_queryset().filter(tenant_id=getattr(tenant, "pk", tenant))


class TenantOwnedModel(models.Model):
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="+")

    objects = TenantScopedManager()
    dangerously_unscoped = models.Manager()  # noqa: DJ012 - a manager, not a field

    class Meta:
        abstract = True
        # Django internals (admin, serializer validators, related lookups) use this one.
        default_manager_name = "dangerously_unscoped"
