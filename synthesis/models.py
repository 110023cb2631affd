"""Synthesis requests: one row per API call that produces audio."""

import uuid

from django.db import models

from core.scoping import TenantOwnedModel


class SynthesisRequest(TenantOwnedModel):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        PROCESSING = "processing", "Processing"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    TERMINAL = (Status.SUCCEEDED, Status.FAILED)

    class Mode(models.TextChoices):
        SYNC = "sync", "Synchronous"
        STREAM = "stream", "Streaming"
        ASYNC = "async", "Asynchronous"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="+")
    request_id = models.CharField(max_length=128, db_index=True)
    api_key = models.ForeignKey(
        "tenancy.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    voice = models.ForeignKey("voices.Voice", on_delete=models.PROTECT, related_name="+")
    voice_slug = models.CharField(max_length=100)
    model_version = models.CharField(max_length=200)
    # The rollout whose ramp chose the version, the arm it put the request in and why
    # (rollout.assignment.Reason): what guardrails compare.
    rollout = models.ForeignKey(
        "rollout.Rollout", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    rollout_arm = models.CharField(max_length=16, blank=True)
    assignment_reason = models.CharField(max_length=16, blank=True)
    # The text is kept only until the job ends; its hash and length stay for audit and billing.
    text = models.TextField(blank=True)
    text_sha256 = models.CharField(max_length=64)
    characters = models.PositiveIntegerField()
    controls = models.JSONField(default=dict)
    format = models.CharField(max_length=8)
    sample_rate = models.PositiveIntegerField()
    mode = models.CharField(max_length=8, choices=Mode.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.CharField(max_length=500, blank=True)
    audio_key = models.CharField(max_length=500, blank=True)
    audio_bytes = models.PositiveIntegerField(default=0)
    audio_seconds = models.FloatField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    queue_wait_ms = models.PositiveIntegerField(null=True, blank=True)
    synthesis_ms = models.PositiveIntegerField(null=True, blank=True)
    # The engine's output came from the repeat-prompt cache (synthesis_ms stays empty: the
    # engine did not run, so the rollout guardrails take no latency sample from it).
    prompt_cache_hit = models.BooleanField(default=False)
    encode_ms = models.PositiveIntegerField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    webhook_url = models.URLField(max_length=500, blank=True)
    character_reservation = models.ForeignKey(
        "tenancy.QuotaReservation",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    slot_reservation = models.ForeignKey(
        "tenancy.QuotaReservation",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # Watermark that identifies this request in its audio (see speech/watermark).
    watermark_backend = models.CharField(max_length=32, blank=True)
    watermark_key_id = models.CharField(max_length=32, blank=True)
    watermark_payload = models.CharField(max_length=64, blank=True, db_index=True)

    class Meta(TenantOwnedModel.Meta):
        indexes = [
            models.Index(fields=["tenant", "created_at"]),
            models.Index(fields=["status", "created_at"]),
            models.Index(fields=["rollout", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.voice_slug} {self.status} ({self.pk})"

    @property
    def is_terminal(self) -> bool:
        return self.status in self.TERMINAL
