"""Voices: the tenant-independent stock voices and each tenant's custom voices, their
versions (one per fine-tune), training recordings and fine-tuning jobs."""

import uuid

from django.db import models
from django.db.models import Q

from core.scoping import TenantOwnedModel, TenantScopedManager, TenantScopeError, current_tenant


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
        FAILED = "failed", "Failed"
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
    # Custom voices only: whose voice it is, and the consent that allows it.
    talent = models.ForeignKey(
        "consent.VoiceTalent", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    consent = models.ForeignKey(
        "consent.ConsentRecord",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    active_version = models.ForeignKey(
        "voices.VoiceVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    default_controls = models.JSONField(default=dict, blank=True)
    disabled_reason = models.CharField(max_length=64, blank=True)
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


class VoiceVersion(TenantOwnedModel):
    """One fine-tune's result: an adapter artefact in object storage and its evaluation."""

    class Status(models.TextChoices):
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"
        DELETED = "deleted", "Deleted"  # artefact purged after the consent ended

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    voice = models.ForeignKey(Voice, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices)
    model_version = models.ForeignKey(
        "rollout.ModelVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    artefact_key = models.CharField(max_length=500, blank=True)
    artefact_sha256 = models.CharField(max_length=64, blank=True)
    artefact_bytes = models.BigIntegerField(default=0)
    metrics = models.JSONField(default=dict)
    gate_failures = models.JSONField(default=list)
    train_recordings = models.PositiveIntegerField(default=0)
    held_out_recordings = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta(TenantOwnedModel.Meta):
        ordering = ["number"]
        constraints = [
            models.UniqueConstraint(fields=["voice", "number"], name="uniq_voice_version_number")
        ]

    def __str__(self) -> str:
        return f"{self.voice_id} v{self.number}"


class TrainingRecording(TenantOwnedModel):
    class Status(models.TextChoices):
        PROCESSING = "processing", "Processing"
        ACCEPTED = "accepted", "Accepted"
        REJECTED = "rejected", "Rejected"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    voice = models.ForeignKey(Voice, on_delete=models.CASCADE, related_name="recordings")
    filename = models.CharField(max_length=255)  # as uploaded; a label, never a path
    transcript = models.TextField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PROCESSING)
    problems = models.JSONField(default=list, blank=True)  # [{code, message}]
    upload_bytes = models.PositiveIntegerField(default=0)
    upload_key = models.CharField(max_length=500, blank=True)  # the upload, until checked
    audio_key = models.CharField(max_length=500, blank=True)  # trimmed, normalised WAV
    audio_bytes = models.PositiveIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    content_sha256 = models.CharField(max_length=64, blank=True)
    duration_s = models.FloatField(default=0)
    sample_rate = models.PositiveIntegerField(default=0)
    asr_transcript = models.TextField(blank=True)
    wer = models.FloatField(null=True, blank=True)
    speaker_score = models.FloatField(null=True, blank=True)
    quality = models.JSONField(default=dict, blank=True)
    embedding = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    checked_at = models.DateTimeField(null=True, blank=True)

    class Meta(TenantOwnedModel.Meta):
        ordering = ["created_at", "filename"]
        indexes = [models.Index(fields=["voice", "status"])]

    def __str__(self) -> str:
        return self.filename


class FineTuneJob(TenantOwnedModel):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"  # a version was produced (ready or failed gates)
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    voice = models.ForeignKey(Voice, on_delete=models.CASCADE, related_name="fine_tunes")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    phase = models.CharField(max_length=32, blank=True)
    step = models.PositiveIntegerField(default=0)
    total_steps = models.PositiveIntegerField(default=0)
    loss = models.FloatField(null=True, blank=True)
    percent = models.FloatField(default=0)
    eta_s = models.FloatField(null=True, blank=True)
    steps = models.PositiveIntegerField(default=0)  # training steps asked for
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.CharField(max_length=500, blank=True)
    version = models.ForeignKey(
        VoiceVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reservation = models.ForeignKey(
        "tenancy.QuotaReservation",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_by = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta(TenantOwnedModel.Meta):
        indexes = [models.Index(fields=["tenant", "created_at"])]

    def __str__(self) -> str:
        return f"fine-tune {self.pk} ({self.status})"
