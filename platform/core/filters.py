"""List filters that cannot name another tenant's rows.

django-filter builds a model-choice filter for every relation a FilterSet names, with a
queryset taken once, at import, from the related model's default manager. Here a tenant-owned
model's filter gets its scoped manager instead, evaluated per request: the choices are the
request's tenant's rows only, so another tenant's id is answered exactly like an unknown one.
Every API list view uses this backend and base class.
"""

from __future__ import annotations

import django_filters
from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django_filters.filterset import FILTER_FOR_DBFIELD_DEFAULTS, remote_queryset
from django_filters.rest_framework import DjangoFilterBackend

from core.scoping import TenantScopedManager


def _related_choices(field) -> dict:
    manager = field.related_model._default_manager
    if isinstance(manager, TenantScopedManager):
        return {"queryset": manager}
    return {"queryset": remote_queryset(field)}


class TenantScopedFilterSet(django_filters.FilterSet):
    FILTER_DEFAULTS = {
        **FILTER_FOR_DBFIELD_DEFAULTS,
        models.ForeignKey: {
            "filter_class": django_filters.ModelChoiceFilter,
            "extra": _related_choices,
        },
        models.OneToOneField: {
            "filter_class": django_filters.ModelChoiceFilter,
            "extra": _related_choices,
        },
        models.ManyToManyField: {
            "filter_class": django_filters.ModelMultipleChoiceFilter,
            "extra": _related_choices,
        },
    }


class TenantScopedFilterBackend(DjangoFilterBackend):
    filterset_base = TenantScopedFilterSet

    def get_filterset_class(self, view, queryset=None):
        filterset_class = getattr(view, "filterset_class", None)
        if filterset_class is not None and not issubclass(filterset_class, TenantScopedFilterSet):
            raise ImproperlyConfigured(
                f"{type(view).__name__}.filterset_class must subclass TenantScopedFilterSet."
            )
        return super().get_filterset_class(view, queryset)
