"""Voice talents, their consent to a synthetic voice, and the evidence that verified it."""

import uuid

from django.db import models

from core.scoping import TenantOwnedModel


class StatementTemplate(models.Model):
    """The wording of a consent statement, per language. Data, not code: operators add and
    revise templates in the Django admin; a new wording is a new version, old consents keep the
    version they were issued with."""

    language = models.CharField(max_length=16)
    version = models.PositiveIntegerField(default=1)
    # Placeholders: {talent}, {company}, {purpose}, {challenge}, {date}.
    text = models.TextField()
    purpose = models.CharField(max_length=300)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["language", "version"], name="uniq_statement_template_version"
            )
        ]

    def __str__(self) -> str:
        return f"{self.language} v{self.version}"


class VoiceTalent(TenantOwnedModel):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=50, blank=True)
    notes = models.TextField(blank=True)
    languages = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta(TenantOwnedModel.Meta):
        indexes = [models.Index(fields=["tenant", "created_at"])]

    def __str__(self) -> str:
        return self.name


class ConsentRecord(TenantOwnedModel):
    """One consent statement issued to a talent for a voice, and what became of it.

    pending -> verifying -> verified | rejected; verified (or an overridden rejection) ->
    revoked | expired. Every transition is a conditional update in `consent.services`."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        VERIFYING = "verifying", "Verifying"
        VERIFIED = "verified", "Verified"
        REJECTED = "rejected", "Rejected"
        REVOKED = "revoked", "Revoked"
        EXPIRED = "expired", "Expired"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    talent = models.ForeignKey(VoiceTalent, on_delete=models.PROTECT, related_name="consents")
    voice = models.ForeignKey(
        "voices.Voice", null=True, blank=True, on_delete=models.SET_NULL, related_name="consents"
    )
    language = models.CharField(max_length=16)
    template_version = models.PositiveIntegerField()
    company = models.CharField(max_length=200)  # the tenant's legal name when issued
    purpose = models.CharField(max_length=300)
    challenge = models.CharField(max_length=200)
    statement = models.TextField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=200, blank=True)
    # The statement must be recorded before this; a stale recording cannot be replayed.
    statement_expires_at = models.DateTimeField()
    # The consent itself lapses here (null: until revoked). Expiry acts like revocation.
    valid_until = models.DateTimeField(null=True, blank=True)
    recording_key = models.CharField(max_length=500, blank=True)
    recording_sha256 = models.CharField(max_length=64, blank=True)
    recording_bytes = models.PositiveIntegerField(default=0)
    recorded_at = models.DateTimeField(null=True, blank=True)
    # The consent recording's speaker embedding: the anchor every training recording must match.
    embedding = models.JSONField(null=True, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    reasons = models.JSONField(default=list, blank=True)  # [{code, message}] a person can act on
    override_reason = models.TextField(blank=True)
    overridden_by = models.CharField(max_length=200, blank=True)
    overridden_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)  # revoked or expired
    ended_by = models.CharField(max_length=200, blank=True)
    end_reason = models.TextField(blank=True)
    # Trained artefacts of the voices using this consent are deleted after this moment.
    artefacts_delete_after = models.DateTimeField(null=True, blank=True)
    artefacts_deleted_at = models.DateTimeField(null=True, blank=True)

    ACTIVE = (Status.VERIFIED,)
    ENDED = (Status.REVOKED, Status.EXPIRED)

    class Meta(TenantOwnedModel.Meta):
        indexes = [
            models.Index(fields=["tenant", "created_at"]),
            models.Index(fields=["status", "valid_until"]),
        ]

    def __str__(self) -> str:
        return f"consent {self.pk} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.VERIFIED


class ImmutableRow(Exception):
    pass


class ConsentEvidence(TenantOwnedModel):
    """What one verification measured, frozen: written once, never updated or deleted (the
    model refuses, and PostgreSQL/SQLite triggers refuse behind its back)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    consent = models.ForeignKey(ConsentRecord, on_delete=models.PROTECT, related_name="evidence")
    created_at = models.DateTimeField(auto_now_add=True)
    kind = models.CharField(max_length=32, default="verification")  # or "override"
    passed = models.BooleanField()
    audio_sha256 = models.CharField(max_length=64, blank=True)
    transcript = models.TextField(blank=True)
    checks = models.JSONField(default=list)
    thresholds = models.JSONField(default=dict)
    model_versions = models.JSONField(default=dict)
    details = models.JSONField(default=dict)

    class Meta(TenantOwnedModel.Meta):
        ordering = ["created_at"]

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ImmutableRow("Consent evidence is immutable.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ImmutableRow("Consent evidence is immutable.")
