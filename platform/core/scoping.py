"""The one chokepoint that scopes tenant-owned rows, failing closed.

A tenant-owned model's `objects` manager is also its default manager, so everything Django and
DRF build on it (relation fields, validators, filters, related managers) is scoped too:

- `Model.objects.for_tenant(tenant)` scopes explicitly;
- plain `Model.objects.filter(...)` scopes to the tenant of the current request (set by the
  API's and the console's shared tenant resolver); where there is none, the queryset can be
  composed but evaluating it raises `TenantScopeError`: forgetting the tenant is an error,
  never a leak;
- a scoped queryset refuses to create, update or bulk-create rows of another tenant, and a
  loaded row refuses to be saved into another tenant.

Code that must see every tenant (workers looking a row up by id, operator commands, the Django
admin) uses the `dangerously_unscoped` manager, so a reviewer can grep for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.db import models

_current_tenant: ContextVar = ContextVar("timbre_current_tenant", default=None)


class TenantScopeError(RuntimeError):
    pass


def current_tenant():
    return _current_tenant.get()


def activate(tenant) -> None:
    """Make `tenant` the scope of default-manager queries until the enclosing
    `tenant_context` ends (the request's)."""
    _current_tenant.set(tenant)


@contextmanager
def tenant_context(tenant=None) -> Iterator[None]:
    token = _current_tenant.set(tenant)
    try:
        yield
    finally:
        _current_tenant.reset(token)


def _tenant_pk(tenant):
    return getattr(tenant, "pk", tenant)


class TenantScopedQuerySet(models.QuerySet):
    """A queryset that remembers its tenant. Built without one (a default-manager queryset
    made at import, such as a filter's choices), it may be composed but not evaluated, and it
    refuses writes that would cross its tenant."""

    scope_tenant_id = None

    def _clone(self):
        clone = super()._clone()
        clone.scope_tenant_id = self.scope_tenant_id
        return clone

    def _require_tenant(self) -> None:
        if self.scope_tenant_id is None and not self.query.is_empty():
            raise TenantScopeError(
                f"{self.model.__name__}.objects needs a tenant: use .for_tenant(tenant), or "
                "dangerously_unscoped where crossing tenants is intended."
            )

    def _fetch_all(self):
        self._require_tenant()
        super()._fetch_all()

    def iterator(self, *args, **kwargs):
        self._require_tenant()
        return super().iterator(*args, **kwargs)

    def count(self):
        self._require_tenant()
        return super().count()

    def exists(self):
        self._require_tenant()
        return super().exists()

    def aggregate(self, *args, **kwargs):
        self._require_tenant()
        return super().aggregate(*args, **kwargs)

    def delete(self):
        self._require_tenant()
        return super().delete()

    def explain(self, *args, **kwargs):
        self._require_tenant()
        return super().explain(*args, **kwargs)

    def resolve_expression(self, *args, **kwargs):
        # Used as a subquery (`pk__in=...`), it would otherwise reach SQL unscoped.
        self._require_tenant()
        return super().resolve_expression(*args, **kwargs)

    def _refuse_foreign(self, tenant_id) -> None:
        self._require_tenant()
        if tenant_id is not None and str(tenant_id) != str(self.scope_tenant_id):
            raise TenantScopeError(
                f"Refusing to write a {self.model.__name__} of another tenant through a "
                "queryset scoped to this one."
            )

    @staticmethod
    def _tenant_in(values: dict):
        if "tenant" in values:
            return _tenant_pk(values["tenant"])
        return values.get("tenant_id")

    def create(self, **kwargs):
        self._refuse_foreign(self._tenant_in(kwargs))
        if "tenant" not in kwargs:
            kwargs["tenant_id"] = self.scope_tenant_id
        return super().create(**kwargs)

    def bulk_create(self, objs, *args, **kwargs):
        objs = list(objs)
        for obj in objs:
            self._refuse_foreign(obj.tenant_id)
            obj.tenant_id = self.scope_tenant_id
        return super().bulk_create(objs, *args, **kwargs)

    def update(self, **kwargs):
        self._refuse_foreign(self._tenant_in(kwargs))
        return super().update(**kwargs)

    def update_or_create(self, defaults=None, create_defaults=None, **kwargs):
        for values in (defaults or {}, create_defaults or {}, kwargs):
            self._refuse_foreign(self._tenant_in(values))
        return super().update_or_create(defaults, create_defaults, **kwargs)


class TenantScopedManager(models.Manager.from_queryset(TenantScopedQuerySet)):
    def _scoped(self, tenant, *conditions, **filters) -> TenantScopedQuerySet:
        queryset = super().get_queryset().filter(*conditions, **filters)
        queryset.scope_tenant_id = _tenant_pk(tenant)
        return queryset

    def get_queryset(self):
        # Scoped to the current request's tenant; outside a request, an unbound queryset that
        # refuses to be evaluated.
        tenant = current_tenant()
        return self.for_tenant(tenant) if tenant is not None else super().get_queryset()

    def for_tenant(self, tenant) -> TenantScopedQuerySet:
        if tenant is None or _tenant_pk(tenant) is None:
            raise TenantScopeError(f"No tenant given to scope {self.model.__name__}.")
        return self._scoped(tenant, tenant_id=_tenant_pk(tenant))


class TenantOwnedModel(models.Model):
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="+")

    objects = TenantScopedManager()
    dangerously_unscoped = models.Manager()  # noqa: DJ012 - a manager, not a field

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        loaded = getattr(self, "_loaded_tenant_id", None)
        if loaded is not None and str(loaded) != str(self.tenant_id):
            raise TenantScopeError(f"A {type(self).__name__} cannot move to another tenant.")
        super().save(*args, **kwargs)

    @classmethod
    def from_db(cls, db, field_names, values):
        instance = super().from_db(db, field_names, values)
        instance._loaded_tenant_id = instance.__dict__.get("tenant_id")
        return instance
