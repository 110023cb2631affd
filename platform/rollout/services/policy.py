"""What a tenant chose about new model versions: its rollout policy (early access, explicit
versions) and its pins. `models:read` reads them, `models:write` changes them (or an operator,
through `manage.py rollout`); every change is audited.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from audit import services as audit
from core.errors import ApiError, NotFound
from rollout.models import ModelVersion, TenantRolloutPolicy, VersionPin
from rollout.services.authority import Authority
from rollout.services.resolution import UnknownVersion

POLICY_FIELDS = ("early_access", "allow_explicit_versions")


class InvalidPin(ApiError):
    default_code = "invalid_pin"


def get_policy(authority: Authority, tenant) -> TenantRolloutPolicy:
    """The tenant's policy; an unsaved default (everything off) when it never chose."""
    authority.require_read(tenant.pk)
    policy = TenantRolloutPolicy.objects.for_tenant(tenant).first()
    return policy if policy is not None else TenantRolloutPolicy(tenant=tenant)


def update_policy(authority: Authority, tenant, **changes) -> TenantRolloutPolicy:
    """Change ``early_access`` and/or ``allow_explicit_versions``; None leaves a field as is."""
    authority.require_manage(tenant.pk)
    unknown = set(changes) - set(POLICY_FIELDS)
    if unknown:
        raise ApiError(f"Unknown policy fields: {', '.join(sorted(unknown))}.")
    changes = {k: bool(v) for k, v in changes.items() if v is not None}
    with transaction.atomic():
        policy, _ = (
            TenantRolloutPolicy.objects.for_tenant(tenant)
            .select_for_update()
            .get_or_create(tenant=tenant)
        )
        before = {name: getattr(policy, name) for name in POLICY_FIELDS}
        for name, value in changes.items():
            setattr(policy, name, value)
        policy.save()
        audit.record(
            "rollout.policy.update",
            tenant=tenant,
            context=authority.context,
            target=policy,
            target_repr=f"rollout policy of {tenant.slug}",
            before=before,
            after={name: getattr(policy, name) for name in POLICY_FIELDS},
        )
    return policy


def list_pins(authority: Authority, tenant):
    authority.require_read(tenant.pk)
    return VersionPin.objects.for_tenant(tenant).select_related("version").order_by("family")


def get_pin(authority: Authority, tenant, pin_id) -> VersionPin:
    authority.require_read(tenant.pk)
    try:
        return VersionPin.objects.for_tenant(tenant).select_related("version").get(pk=pin_id)
    except (VersionPin.DoesNotExist, ValidationError, ValueError, TypeError):
        raise NotFound() from None  # a malformed id is just another unknown one


def pin(authority: Authority, tenant, version_id: str, family: str | None = None) -> VersionPin:
    """Pin the version's family to ``version_id`` for the tenant (replacing an earlier pin).

    The version must be validated and visible to the tenant; anything else, another tenant's
    version included, is `unknown_model_version`.
    """
    authority.require_manage(tenant.pk)
    version = (
        ModelVersion.objects.visible_to(tenant)
        .filter(pk=version_id, status=ModelVersion.Status.VALIDATED)
        .first()
    )
    if version is None:
        raise UnknownVersion(f"Model version {version_id!r} is not a validated version you use.")
    if family and family != version.family:
        raise InvalidPin(
            f"{version.id} is a version of {version.family}, not {family}.",
            code="family_mismatch",
        )
    with transaction.atomic():
        existing = (
            VersionPin.objects.for_tenant(tenant)
            .select_for_update()
            .filter(family=version.family)
            .first()
        )
        before = {"version": existing.version_id} if existing is not None else None
        if existing is None:
            pinned = VersionPin.objects.for_tenant(tenant).create(
                tenant=tenant, family=version.family, version=version, created_by=authority.label
            )
        else:
            existing.version, existing.created_by = version, authority.label
            existing.save(update_fields=["version", "created_by"])
            pinned = existing
        audit.record(
            "rollout.pin",
            tenant=tenant,
            context=authority.context,
            target=pinned,
            target_repr=f"{version.family} -> {version.id}"[:200],
            before=before,
            after={"family": version.family, "version": version.id},
        )
    return pinned


def unpin(authority: Authority, tenant, pinned: VersionPin) -> None:
    authority.require_manage(tenant.pk)
    if str(pinned.tenant_id) != str(tenant.pk):
        raise NotFound()
    with transaction.atomic():
        audit.record(
            "rollout.unpin",
            tenant=tenant,
            context=authority.context,
            target=pinned,
            target_repr=f"{pinned.family} -> {pinned.version_id}"[:200],
            before={"family": pinned.family, "version": pinned.version_id},
        )
        pinned.delete()


def pin_for_family(authority: Authority, tenant, family: str) -> VersionPin:
    authority.require_read(tenant.pk)
    found = VersionPin.objects.for_tenant(tenant).filter(family=family).first()
    if found is None:
        raise NotFound(f"{tenant.slug} has no pin for {family}.")
    return found
