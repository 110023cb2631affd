"""Tenants, plans and memberships."""

from __future__ import annotations

import hashlib
import hmac

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from audit import services as audit
from core.errors import NotFound
from tenancy.models import Membership, Plan, Tenant
from tenancy.roles import Role, Scope
from tenancy.services.access import Access, role_scopes
from tenancy.services.errors import InsufficientScope, InvalidRequest

DEFAULT_PLANS = {
    "starter": dict(
        name="Starter",
        monthly_characters=100_000,
        requests_per_minute_per_key=60,
        requests_per_minute_per_tenant=120,
        concurrent_jobs=2,
        fine_tunes_per_month=1,
        max_voices=2,
        storage_bytes=1 << 30,
    ),
    "business": dict(
        name="Business",
        monthly_characters=2_000_000,
        requests_per_minute_per_key=300,
        requests_per_minute_per_tenant=1200,
        concurrent_jobs=8,
        fine_tunes_per_month=5,
        max_voices=10,
        storage_bytes=20 << 30,
    ),
    "enterprise": dict(
        name="Enterprise",
        monthly_characters=None,
        requests_per_minute_per_key=1200,
        requests_per_minute_per_tenant=6000,
        concurrent_jobs=32,
        fine_tunes_per_month=50,
        max_voices=100,
        storage_bytes=None,
    ),
}


def get_or_create_plan(slug: str) -> Plan:
    if slug not in DEFAULT_PLANS and not Plan.objects.filter(slug=slug).exists():
        raise InvalidRequest(f"Unknown plan {slug!r}.", code="unknown_plan")
    plan, _ = Plan.objects.get_or_create(slug=slug, defaults=DEFAULT_PLANS.get(slug, {}))
    return plan


def tenant_snapshot(tenant: Tenant) -> dict:
    return {
        "slug": tenant.slug,
        "name": tenant.name,
        "status": tenant.status,
        "plan": tenant.plan.slug,
    }


# The console's tenant-less routes (/console/login/, /console/invite/...) come before
# /console/<slug>/; a tenant with one of these slugs could not be reached there.
RESERVED_SLUGS = frozenset({"login", "logout", "switch", "invite", "static", "api"})


@transaction.atomic
def create_tenant(
    slug: str, name: str, plan_slug: str = "starter", context: audit.RequestContext | None = None
) -> Tenant:
    if slug in RESERVED_SLUGS:
        raise InvalidRequest(f"The slug {slug!r} is reserved.", code="reserved_slug")
    if Tenant.objects.filter(slug=slug).exists():
        raise InvalidRequest(f"A tenant with slug {slug!r} exists.", code="tenant_exists")
    tenant = Tenant.objects.create(slug=slug, name=name, plan=get_or_create_plan(plan_slug))
    audit.record(
        "tenant.create",
        tenant=tenant,
        context=context,
        target=tenant,
        after=tenant_snapshot(tenant),
    )
    return tenant


@transaction.atomic
def set_tenant_status(
    tenant: Tenant, status: str, context: audit.RequestContext | None = None
) -> Tenant:
    if status not in Tenant.Status.values:
        raise InvalidRequest(f"status must be one of {Tenant.Status.values}.")
    before = tenant_snapshot(tenant)
    tenant.status = status
    tenant.save(update_fields=["status"])
    audit.record(
        "tenant.suspend" if status == Tenant.Status.SUSPENDED else "tenant.activate",
        tenant=tenant,
        context=context,
        target=tenant,
        before=before,
        after=tenant_snapshot(tenant),
    )
    return tenant


@transaction.atomic
def change_plan(
    tenant: Tenant, plan_slug: str, context: audit.RequestContext | None = None
) -> Tenant:
    before = tenant_snapshot(tenant)
    tenant.plan = get_or_create_plan(plan_slug)
    tenant.save(update_fields=["plan"])
    audit.record(
        "tenant.plan_change",
        tenant=tenant,
        context=context,
        target=tenant,
        before=before,
        after=tenant_snapshot(tenant),
    )
    return tenant


def membership_for(user, tenant: Tenant) -> Membership | None:
    if user is None or not user.is_authenticated:
        return None
    return Membership.objects.for_tenant(tenant).filter(user=user).first()


def _check_can_grant(access: Access, role: str) -> None:
    """Granting, changing or removing a role needs `members:write` and every scope of that
    role; only owners (and operators) make or unmake owners."""
    access.require(Scope.MEMBERS_WRITE)
    if role not in Role.values:
        raise InvalidRequest(f"role must be one of {', '.join(Role.values)}.", code="invalid_role")
    if role == Role.OWNER and not access.may_manage_owners:
        raise InsufficientScope("Only an owner can grant or remove the owner role.")
    access.require_all(role_scopes(role), f"grant or remove the {role} role")


def _owners(tenant: Tenant):
    return Membership.objects.for_tenant(tenant).filter(role=Role.OWNER)


def _same_tenant(access: Access, membership: Membership) -> None:
    if membership.tenant_id != access.tenant.pk:
        raise NotFound()


@transaction.atomic
def add_member(
    access: Access, user, role: str, *, context: audit.RequestContext | None = None
) -> Membership:
    _check_can_grant(access, role)
    tenant = access.tenant
    if membership_for(user, tenant):
        raise InvalidRequest("This user is already a member.", code="member_exists")
    membership = Membership.objects.for_tenant(tenant).create(tenant=tenant, user=user, role=role)
    audit.record(
        "member.add",
        tenant=tenant,
        context=context,
        target=membership,
        target_repr=user.get_username(),
        after={"user": user.get_username(), "role": role},
    )
    return membership


@transaction.atomic
def change_role(
    access: Access,
    membership: Membership,
    role: str,
    *,
    context: audit.RequestContext | None = None,
) -> Membership:
    _same_tenant(access, membership)
    _check_can_grant(access, role)
    _check_can_grant(access, membership.role)
    if (
        membership.role == Role.OWNER
        and role != Role.OWNER
        and _owners(membership.tenant).count() == 1
    ):
        raise InvalidRequest("A tenant must keep at least one owner.", code="last_owner")
    before = {"user": membership.user.get_username(), "role": membership.role}
    membership.role = role
    membership.save(update_fields=["role"])
    audit.record(
        "member.role_change",
        tenant=membership.tenant,
        context=context,
        target=membership,
        target_repr=membership.user.get_username(),
        before=before,
        after={**before, "role": role},
    )
    return membership


@transaction.atomic
def remove_member(
    access: Access, membership: Membership, *, context: audit.RequestContext | None = None
) -> None:
    _same_tenant(access, membership)
    _check_can_grant(access, membership.role)
    if membership.role == Role.OWNER and _owners(membership.tenant).count() == 1:
        raise InvalidRequest("A tenant must keep at least one owner.", code="last_owner")
    before = {"user": membership.user.get_username(), "role": membership.role}
    audit.record(
        "member.remove",
        tenant=membership.tenant,
        context=context,
        target=membership,
        target_repr=membership.user.get_username(),
        before=before,
    )
    membership.delete()


def create_user(email: str, password: str | None = None, **extra):
    User = get_user_model()
    if User.objects.filter(username=email).exists():
        raise InvalidRequest(f"A user {email!r} exists.", code="user_exists")
    return User.objects.create_user(username=email, email=email, password=password, **extra)


def webhook_signing_secret(tenant: Tenant) -> str:
    """Per-tenant secret for webhook signatures, derived so that nothing extra is stored;
    rotating SECRET_KEY rotates it."""
    message = f"webhook:{tenant.pk}".encode()
    return hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).hexdigest()


def get_tenant_by_slug(slug: str) -> Tenant:
    tenant = Tenant.objects.select_related("plan").filter(slug=slug).first()
    if tenant is None:
        raise NotFound()
    return tenant
