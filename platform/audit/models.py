"""Append-only, hash-chained audit events.

Each tenant has its own chain (events without a tenant, such as a failed login for an unknown
user, go to the "global" chain). `hash = sha256(prev_hash + canonical JSON of the row)`.
PostgreSQL refuses UPDATE and DELETE with a trigger (see migration 0002); `audit_verify`
finds rows changed behind the trigger's back.
"""

from __future__ import annotations

from django.db import models

from core.scoping import TenantOwnedModel

GLOBAL_CHAIN = "global"


class AuditEvent(TenantOwnedModel):
    class ActorType(models.TextChoices):
        USER = "user", "User"
        API_KEY = "api_key", "API key"
        SYSTEM = "system", "System"
        ANONYMOUS = "anonymous", "Anonymous"

    # PROTECT: a tenant with audit history cannot be deleted out from under it.
    tenant = models.ForeignKey(
        "tenancy.Tenant", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    chain = models.CharField(max_length=64)
    seq = models.BigIntegerField()
    created_at = models.DateTimeField()
    actor_type = models.CharField(max_length=16, choices=ActorType.choices)
    # Plain ids, not foreign keys: deleting a user must not rewrite history.
    actor_id = models.CharField(max_length=64, blank=True)
    actor_label = models.CharField(max_length=200, blank=True)
    action = models.CharField(max_length=100, db_index=True)
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_repr = models.CharField(max_length=200, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    request_id = models.CharField(max_length=128, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta(TenantOwnedModel.Meta):
        constraints = [
            models.UniqueConstraint(fields=["chain", "seq"], name="uniq_audit_chain_seq")
        ]
        indexes = [models.Index(fields=["tenant", "created_at"])]
        ordering = ["chain", "seq"]

    def __str__(self) -> str:
        return f"{self.action} by {self.actor_label} ({self.chain}#{self.seq})"


class AuditChainHead(models.Model):
    """The latest (seq, hash) of each chain: the lock appends take, and the check for a
    truncated tail."""

    chain = models.CharField(max_length=64, unique=True)
    seq = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64, default="0" * 64)

    def __str__(self) -> str:
        return f"{self.chain}@{self.seq}"
