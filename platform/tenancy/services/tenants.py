"""Tenants, plans and memberships."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from audit import services as audit
from audit.models import AuditEvent
from core.errors import NotFound
from tenancy.models import Invitation, Membership, Plan, Tenant
from tenancy.roles import Role, Scope
from tenancy.services.access import Access, role_scopes
from tenancy.services.errors import InsufficientScope, InvalidRequest

logger = logging.getLogger(__name__)

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


def grantable_roles(access: Access) -> list[str]:
    """The roles `access` may grant (the console offers only these; the services still check)."""
    roles = []
    for role in Role.values:
        try:
            _check_can_grant(access, role)
        except (InsufficientScope, InvalidRequest):
            continue
        roles.append(role)
    return roles


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


# --- Invitations ---------------------------------------------------------------------------
def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def invitation_snapshot(invitation: Invitation) -> dict:
    # Never the token or its digest: the audit log is read by auditors and exported.
    return {
        "email": invitation.email,
        "role": invitation.role,
        "expires_at": invitation.expires_at,
    }


def normalize_email(email) -> str:
    email = str(email or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError as exc:
        raise InvalidRequest(
            "Enter a valid email address.", code="invalid_email", details={"field": "email"}
        ) from exc
    return email


@dataclass(frozen=True)
class InviteResult:
    """An existing user is added at once (`membership`); anyone else gets an `invitation`
    whose `accept_url` (a path under /console/) is returned once and never stored."""

    membership: Membership | None = None
    invitation: Invitation | None = None
    accept_url: str | None = None


def invite_member(
    access: Access,
    email: str,
    role: str,
    *,
    context: audit.RequestContext | None = None,
    base_url: str = "",
) -> InviteResult:
    """Add the user with this email in `role`, or invite them: the same grant rule as
    `add_member`. `base_url` (scheme and host) makes the mailed link absolute."""
    _check_can_grant(access, role)
    email = normalize_email(email)
    user = get_user_model().objects.filter(username__iexact=email).first()
    if user is not None:
        return InviteResult(membership=add_member(access, user, role, context=context))
    invitation, token = _create_invitation(access, email, role, context)
    accept_url = reverse("frontend:invite-accept", kwargs={"token": token})
    _send_invitation(invitation, f"{base_url.rstrip('/')}{accept_url}")
    return InviteResult(invitation=invitation, accept_url=accept_url)


@transaction.atomic
def _create_invitation(access: Access, email: str, role: str, context) -> tuple[Invitation, str]:
    tenant = access.tenant
    pending = Invitation.objects.for_tenant(tenant).filter(
        email=email,
        accepted_at__isnull=True,
        revoked_at__isnull=True,
        expires_at__gt=timezone.now(),
    )
    if pending.exists():
        raise InvalidRequest(
            "This email already has a pending invitation; revoke it to send a new one.",
            code="invitation_pending",
            details={"field": "email"},
        )
    token = secrets.token_urlsafe(32)
    invitation = Invitation.objects.for_tenant(tenant).create(
        tenant=tenant,
        email=email,
        role=role,
        token_digest=_token_digest(token),
        invited_by_id=access.membership.user_id if access.membership else None,
        expires_at=timezone.now() + Invitation.VALID_FOR,
    )
    audit.record(
        "member.invite",
        tenant=tenant,
        context=context,
        target=invitation,
        target_repr=email,
        after=invitation_snapshot(invitation),
    )
    return invitation, token


def _send_invitation(invitation: Invitation, link: str) -> None:
    tenant = invitation.tenant
    try:
        send_mail(
            f"You are invited to {tenant.name} on Timbre",
            f"You have been invited to join {tenant.name} on Timbre as "
            f"{invitation.get_role_display()}.\n\nSet your password here (the link works once, "
            f"for 7 days):\n{link}\n",
            None,
            [invitation.email],
        )
    except Exception:  # noqa: BLE001 - the inviter still has the link to pass on
        logger.warning("Invitation %s: the email could not be sent", invitation.pk)


def pending_invitation(token: str) -> Invitation | None:
    """The invitation a link's token names while it can still be accepted, else None. The
    token alone says which tenant it is for, so this looks across tenants."""
    if not token or len(token) > 200:
        return None
    return (
        Invitation.dangerously_unscoped.select_related("tenant")
        .filter(
            token_digest=_token_digest(token),
            accepted_at__isnull=True,
            revoked_at__isnull=True,
            expires_at__gt=timezone.now(),
            tenant__status=Tenant.Status.ACTIVE,
        )
        .first()
    )


def existing_user_for(invitation: Invitation):
    return get_user_model().objects.filter(username__iexact=invitation.email).first()


def accept_invitation(token: str, password: str | None = None, *, user=None, context=None):
    """Accept an invitation: create the invitee's account with `password` (Django's password
    validators apply), or, when an account with that email already exists, add that account,
    which must be the signed-in `user` (a link never sets an existing account's password).
    Returns the new membership. An unknown, expired, revoked or used token is NotFound."""
    invitation = pending_invitation(token)
    if invitation is None:
        raise NotFound("This invitation is not valid any more.")
    existing = existing_user_for(invitation)
    if existing is not None:
        if user is None or not user.is_authenticated or user.pk != existing.pk:
            raise InvalidRequest(
                "An account with this email exists: sign in to it, then open the link again.",
                code="sign_in_required",
            )
    else:
        try:
            password_validation.validate_password(
                password or "", user=get_user_model()(username=invitation.email)
            )
        except ValidationError as exc:
            raise InvalidRequest(
                " ".join(exc.messages), code="invalid_password", details={"field": "password"}
            ) from exc
    try:
        with transaction.atomic():
            return _accept(invitation, existing, password, context)
    except IntegrityError as exc:  # the same account accepted twice at once
        raise NotFound("This invitation is not valid any more.") from exc


def _accept(invitation: Invitation, existing, password, context) -> Membership:
    tenant = invitation.tenant
    now = timezone.now()
    # One conditional update: of two simultaneous accepts, one wins and the other is a 404.
    claimed = Invitation.dangerously_unscoped.filter(
        pk=invitation.pk,
        accepted_at__isnull=True,
        revoked_at__isnull=True,
        expires_at__gt=now,
    ).update(accepted_at=now)
    if not claimed:
        raise NotFound("This invitation is not valid any more.")
    user = existing or create_user(invitation.email, password)
    if membership_for(user, tenant):
        raise InvalidRequest("You are already a member of this tenant.", code="member_exists")
    membership = Membership.objects.for_tenant(tenant).create(
        tenant=tenant, user=user, role=invitation.role
    )
    actor = audit.Actor(AuditEvent.ActorType.USER, str(user.pk), user.get_username())
    audit.record(
        "member.invite_accept",
        tenant=tenant,
        context=context,
        actor=actor,
        target=membership,
        target_repr=user.get_username(),
        after={"user": user.get_username(), "role": invitation.role},
    )
    return membership


@transaction.atomic
def revoke_invitation(
    access: Access, invitation: Invitation, *, context: audit.RequestContext | None = None
) -> Invitation:
    if invitation.tenant_id != access.tenant.pk:
        raise NotFound()
    _check_can_grant(access, invitation.role)
    if invitation.status != "pending":
        raise InvalidRequest(
            f"This invitation is {invitation.status}; only a pending one can be revoked.",
            code="invitation_not_pending",
        )
    invitation.revoked_at = timezone.now()
    invitation.save(update_fields=["revoked_at"])
    audit.record(
        "member.invite_revoke",
        tenant=access.tenant,
        context=context,
        target=invitation,
        target_repr=invitation.email,
        before=invitation_snapshot(invitation),
    )
    return invitation


# --- The tenant's profile -----------------------------------------------------------------
TENANT_NAME_MAX_LENGTH = Tenant._meta.get_field("name").max_length
LEGAL_NAME_MAX_LENGTH = Tenant._meta.get_field("legal_name").max_length


def _profile(tenant: Tenant) -> dict:
    return {"name": tenant.name, "legal_name": tenant.legal_name}


@transaction.atomic
def update_tenant_profile(
    access: Access,
    *,
    name: str | None = None,
    legal_name: str | None = None,
    context: audit.RequestContext | None = None,
) -> Tenant:
    """Rename the tenant or change the legal name that consent statements name (blank: the
    name is used). Owners and admins only (`admin`)."""
    access.require(Scope.ADMIN)
    tenant = access.tenant
    changes = {}
    if name is not None:
        name = str(name).strip()
        if not name:
            raise InvalidRequest(
                "The tenant needs a name.", code="invalid_name", details={"field": "name"}
            )
        if len(name) > TENANT_NAME_MAX_LENGTH:
            raise InvalidRequest(
                f"The name has at most {TENANT_NAME_MAX_LENGTH} characters.",
                code="invalid_name",
                details={"field": "name"},
            )
        changes["name"] = name
    if legal_name is not None:
        legal_name = str(legal_name).strip()
        if len(legal_name) > LEGAL_NAME_MAX_LENGTH:
            raise InvalidRequest(
                f"The legal name has at most {LEGAL_NAME_MAX_LENGTH} characters.",
                code="invalid_legal_name",
                details={"field": "legal_name"},
            )
        changes["legal_name"] = legal_name
    changes = {k: v for k, v in changes.items() if getattr(tenant, k) != v}
    if not changes:
        return tenant
    before = _profile(tenant)
    for field, value in changes.items():
        setattr(tenant, field, value)
    tenant.save(update_fields=list(changes))
    audit.record(
        "tenant.update",
        tenant=tenant,
        context=context,
        target=tenant,
        before=before,
        after=_profile(tenant),
    )
    return tenant


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
