"""Voices: the tenant-independent stock voices and each tenant's custom voices."""

import uuid

from django.db import models
from django.db.models import Q

from core.scoping import TenantScopedManager, TenantScopeError, current_tenant


class VoiceManager(TenantScopedManager):
    """Voices are tenant-owned or stock (no tenant). By default a tenant sees its own voices
    plus the stock ones; like every scoped manager this refuses to list anything until told
    whose view it is."""

    def get_queryset(self):
        tenant = current_tenant()
        return self.visible_to(tenant) if tenant is not None else super().get_queryset()

    def visible_to(self, tenant) -> models.QuerySet:
        """The tenant's own voices plus the stock voices every tenant may use."""
        if tenant is None:
            raise TenantScopeError("No tenant given to scope Voice.")
        return self._scoped(tenant, Q(tenant=tenant) | Q(tenant__isnull=True))


class Voice(models.Model):
    class Kind(models.TextChoices):
        STOCK = "stock", "Stock"
        CUSTOM = "custom", "Custom"

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        TRAINING = "training", "Training"
        READY = "ready", "Ready"
        DISABLED = "disabled", "Disabled"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(
        "tenancy.Tenant", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    slug = models.SlugField(max_length=100)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    language = models.CharField(max_length=16, default="en-US")
    description = models.TextField(blank=True)
    model_version = models.ForeignKey(
        "rollout.ModelVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = VoiceManager()
    dangerously_unscoped = models.Manager()  # noqa: DJ012 - a manager, not a field

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "slug"], name="uniq_voice_slug_per_tenant"),
            models.UniqueConstraint(
                fields=["slug"], condition=Q(tenant__isnull=True), name="uniq_stock_voice_slug"
            ),
        ]

    def __str__(self) -> str:
        return self.slug
