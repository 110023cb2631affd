"""The model registry and progressive rollouts.

- `ModelVersion`: one immutable model artefact of a family (the stock engine, or one custom
  voice), platform-wide or owned by one tenant, validated before it may serve.
- `Rollout`: a candidate version ramped against the family's stable version, step by step.
- `RolloutDecision`: every decision on a rollout, manual or automatic, with its evidence.
- `TenantRolloutPolicy` / `VersionPin`: what a tenant chose (early access, explicit versions,
  pins).
- `QualitySample`: one request's text rendered by both versions off the request path, scored.
"""

import secrets
import uuid

from django.db import models
from django.db.models import Q

from core.scoping import TenantOwnedModel, TenantScopedManager, TenantScopeError, current_tenant

STOCK_FAMILY = "stock"


def voice_family(voice_id) -> str:
    return f"voice:{voice_id}"


class ModelVersionManager(TenantScopedManager):
    """Platform versions (no owner) are visible to every tenant; a tenant's own versions only
    to it. Like every scoped manager this refuses to list anything until told whose view it is."""

    def get_queryset(self):
        tenant = current_tenant()
        return self.visible_to(tenant) if tenant is not None else super().get_queryset()

    def visible_to(self, tenant) -> models.QuerySet:
        if tenant is None:
            raise TenantScopeError("No tenant given to scope ModelVersion.")
        return self._scoped(tenant, Q(tenant=tenant) | Q(tenant__isnull=True))

    def for_tenant(self, tenant) -> models.QuerySet:
        return self.visible_to(tenant)


class ModelVersion(models.Model):
    """One immutable model artefact, identified by engine, version and checksum."""

    class Status(models.TextChoices):
        REGISTERED = "registered", "Registered"
        VALIDATING = "validating", "Validating"
        VALIDATED = "validated", "Validated"
        REJECTED = "rejected", "Rejected"
        RETIRED = "retired", "Retired"

    # e.g. "piper:en_US-joe-medium@3f2a9c0e1b7d" (engine:version@checksum prefix)
    id = models.CharField(primary_key=True, max_length=200)
    # "stock", or "voice:<voice id>" for one custom voice's versions.
    family = models.CharField(max_length=120, db_index=True, default=STOCK_FAMILY)
    engine = models.CharField(max_length=50)
    version = models.CharField(max_length=100)
    semver = models.CharField(max_length=32, default="1.0.0")
    artefact_checksum = models.CharField(max_length=64)
    # Where the artefact lives: a storage key, or empty for artefacts shipped in a package.
    artefact_key = models.CharField(max_length=500, blank=True)
    # The owner: empty for platform-wide versions, else the tenant whose voice it is.
    tenant = models.ForeignKey(
        "tenancy.Tenant", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    notes = models.TextField(blank=True)
    registered_by = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.REGISTERED)
    # What the validation job measured: rtf, wer, mos, speaker_similarity, sanity, errors.
    validation = models.JSONField(default=dict, blank=True)
    validated_at = models.DateTimeField(null=True, blank=True)
    # Set when a rollout of this version was rolled back: it may not be rolled out again
    # unless an operator retries it (audited).
    marked_bad = models.BooleanField(default=False)
    bad_reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ModelVersionManager()
    dangerously_unscoped = models.Manager()  # noqa: DJ012 - a manager, not a field

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["engine", "version", "artefact_checksum"], name="uniq_model_version"
            ),
            models.UniqueConstraint(fields=["family", "semver"], name="uniq_family_semver"),
        ]

    def __str__(self) -> str:
        return self.id

    @property
    def is_platform(self) -> bool:
        return self.tenant_id is None


class RolloutManager(TenantScopedManager):
    """Platform rollouts (no owner) are run by operators; a tenant sees its own voices'."""

    def for_tenant(self, tenant) -> models.QuerySet:
        if tenant is None:
            raise TenantScopeError("No tenant given to scope Rollout.")
        return self._scoped(tenant, Q(tenant=tenant))

    def visible_to(self, tenant) -> models.QuerySet:
        """Its own rollouts and the platform's (which it may read, never run)."""
        if tenant is None:
            raise TenantScopeError("No tenant given to scope Rollout.")
        return self._scoped(tenant, Q(tenant=tenant) | Q(tenant__isnull=True))


def default_steps() -> list[float]:
    return [1.0, 5.0, 20.0, 50.0, 100.0]


def new_salt() -> str:
    return secrets.token_hex(8)


class Rollout(models.Model):
    class State(models.TextChoices):
        RUNNING = "running", "Running"
        PAUSED = "paused", "Paused"
        COMPLETED = "completed", "Completed"
        ROLLED_BACK = "rolled_back", "Rolled back"

    LIVE = (State.RUNNING, State.PAUSED)

    class OnFail(models.TextChoices):
        ROLLBACK = "rollback", "Roll back"
        PAUSE = "pause", "Pause"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    family = models.CharField(max_length=120, db_index=True)
    # Empty for platform rollouts (stock family); the tenant for its own voice's versions.
    tenant = models.ForeignKey(
        "tenancy.Tenant", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    candidate = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="+")
    stable = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="+")
    state = models.CharField(max_length=16, choices=State.choices, default=State.RUNNING)
    on_fail = models.CharField(max_length=16, choices=OnFail.choices, default=OnFail.ROLLBACK)
    steps = models.JSONField(default=default_steps)
    step_index = models.PositiveSmallIntegerField(default=0)
    percent = models.FloatField(default=0.0)
    # Each step lasts at least this long and sees at least this many requests and quality
    # samples per arm before it may advance.
    min_step_duration_s = models.PositiveIntegerField(default=7200)
    min_requests = models.PositiveIntegerField(default=200)
    min_quality_samples = models.PositiveIntegerField(default=20)
    # "Not enough data" extends a step this many times by its minimum duration, then holds.
    max_extensions = models.PositiveSmallIntegerField(default=1)
    extensions = models.PositiveSmallIntegerField(default=0)
    # Share of rollout requests also rendered by the other version for quality scoring.
    quality_sample_rate = models.FloatField(default=0.05)
    # A tenant with at least this many requests per arm in a window is judged on its own;
    # smaller tenants are pooled.
    tenant_min_requests = models.PositiveIntegerField(default=500)
    alpha = models.FloatField(default=0.05)
    look = models.PositiveSmallIntegerField(default=0)
    salt = models.CharField(max_length=32, default=new_salt)
    # Targeting: "all" or a list of tenant ids; excluded tenants always get stable.
    included_tenants = models.JSONField(default=list, blank=True)
    include_all_tenants = models.BooleanField(default=True)
    excluded_tenants = models.JSONField(default=list, blank=True)
    # Why the ramp is not advancing, when it is holding: insufficient_data, unavailable.
    hold_reason = models.CharField(max_length=32, blank=True)
    retry_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    step_started_at = models.DateTimeField(null=True, blank=True)
    last_evaluated_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    objects = RolloutManager()
    dangerously_unscoped = models.Manager()  # noqa: DJ012 - a manager, not a field

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["family"],
                condition=Q(state__in=["running", "paused"]),
                name="one_live_rollout_per_family",
            )
        ]
        indexes = [models.Index(fields=["state", "family"])]

    def __str__(self) -> str:
        return f"{self.family}: {self.candidate_id} ({self.state} {self.percent:g} %)"

    @property
    def is_live(self) -> bool:
        return self.state in self.LIVE

    @property
    def is_platform(self) -> bool:
        return self.tenant_id is None


class RolloutDecision(models.Model):
    """One decision on a rollout. Immutable; the audit event carries the same evidence."""

    class Action(models.TextChoices):
        START = "start", "Start"
        ADVANCE = "advance", "Advance"
        EXTEND = "extend", "Extend step"
        HOLD = "hold", "Hold"
        PAUSE = "pause", "Pause"
        RESUME = "resume", "Resume"
        PROMOTE = "promote", "Promote"
        COMPLETE = "complete", "Complete"
        ROLLBACK = "rollback", "Roll back"
        TARGET = "target", "Change targeting"

    id = models.BigAutoField(primary_key=True)
    rollout = models.ForeignKey(Rollout, on_delete=models.CASCADE, related_name="decisions")
    action = models.CharField(max_length=16, choices=Action.choices)
    automatic = models.BooleanField(default=False)
    actor = models.CharField(max_length=200, blank=True)
    # The verdict that caused it: pass, fail, insufficient_data, unavailable; empty if manual.
    outcome = models.CharField(max_length=20, blank=True)
    step_index = models.PositiveSmallIntegerField()
    percent_before = models.FloatField()
    percent_after = models.FloatField()
    reason = models.CharField(max_length=500, blank=True)
    # Per judged group (a large tenant, or the pooled small ones): the verdict with, per
    # metric, the effect, its confidence interval and the sample counts.
    evidence = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.rollout_id} {self.action} {self.percent_before:g}->{self.percent_after:g}"


class TenantRolloutPolicy(TenantOwnedModel):
    """What a tenant chose about new versions."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Get candidates of platform rollouts at once, as if at 100 %.
    early_access = models.BooleanField(default=False)
    # Let API keys ask for an explicit version (`model_version`, or OpenAI `model`).
    allow_explicit_versions = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantOwnedModel.Meta):
        constraints = [models.UniqueConstraint(fields=["tenant"], name="uniq_rollout_policy")]


class VersionPin(TenantOwnedModel):
    """The tenant hears exactly this version of the family, whatever rollouts do."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    family = models.CharField(max_length=120)
    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="+")
    created_by = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta(TenantOwnedModel.Meta):
        constraints = [
            models.UniqueConstraint(fields=["tenant", "family"], name="uniq_pin_per_family")
        ]


class QualitySample(TenantOwnedModel):
    """One rollout request's text rendered by both versions, off the request path, and scored
    on ASR WER, predicted MOS and (voices) speaker similarity to the talent."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SCORED = "scored", "Scored"
        FAILED = "failed", "Failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    rollout = models.ForeignKey(Rollout, on_delete=models.CASCADE, related_name="samples")
    request = models.ForeignKey(
        "synthesis.SynthesisRequest",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    step_index = models.PositiveSmallIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    # Kept only until both versions rendered it.
    text = models.TextField(blank=True)
    controls = models.JSONField(default=dict, blank=True)
    candidate_scores = models.JSONField(default=dict, blank=True)  # wer, mos, similarity
    stable_scores = models.JSONField(default=dict, blank=True)
    error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    scored_at = models.DateTimeField(null=True, blank=True)

    class Meta(TenantOwnedModel.Meta):
        indexes = [models.Index(fields=["rollout", "status", "created_at"])]
