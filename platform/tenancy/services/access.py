"""Who is acting, in which tenant, with which scopes: the one resolver the API, the console and
the services share.

The tenant comes from the credential (an API key's own tenant) or from the URL slug for a
signed-in member, never from mutable user state. A tenant the caller cannot see is a 404 (its
existence is not revealed); a suspended tenant refuses everything.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import NotFound
from tenancy.models import ApiKey, Membership, Tenant
from tenancy.roles import ALL_SCOPES, ROLE_SCOPES, Role, Scope, expand
from tenancy.services.errors import InsufficientScope, TenantSuspended

OPERATOR = "operator"


@dataclass(frozen=True)
class Access:
    """The caller's standing in one tenant. `role` is a member's role; an API key acts as
    `admin` when it holds the admin scope (never as an owner) and as `api_key` otherwise;
    operator commands act as `operator` with every scope."""

    tenant: Tenant
    scopes: frozenset[str]
    role: str
    membership: Membership | None = None
    api_key: ApiKey | None = None

    @classmethod
    def operator(cls, tenant: Tenant) -> Access:
        return cls(tenant, frozenset(ALL_SCOPES), OPERATOR)

    @property
    def may_manage_owners(self) -> bool:
        return self.role in (Role.OWNER, OPERATOR)

    def has(self, scope: str | None) -> bool:
        return scope is None or scope in self.scopes

    def require(self, scope: str | None) -> None:
        if not self.has(scope):
            raise InsufficientScope(f"This action requires the '{scope}' scope.")

    def require_all(self, scopes, what: str) -> None:
        """Nobody grants or touches more than they hold."""
        missing = sorted(expand(scopes) - self.scopes)
        if missing:
            raise InsufficientScope(
                f"You cannot {what}: it holds scopes you do not have ({', '.join(missing)})."
            )


def role_scopes(role: str) -> frozenset[str]:
    return ROLE_SCOPES.get(role, frozenset())


def resolve_access(*, api_key: ApiKey | None = None, user=None, slug: str | None = None) -> Access:
    """Resolve the caller's access to a tenant or raise NotFound / TenantSuspended."""
    if api_key is not None:
        tenant = api_key.tenant
        if slug is not None and slug != tenant.slug:
            raise NotFound()
        role = Role.ADMIN if Scope.ADMIN in api_key.scopes else "api_key"
        access = Access(tenant, expand(api_key.scopes), role, api_key=api_key)
    else:
        if slug is None:
            # Members address a tenant explicitly: /api/v1/tenants/<slug>/...
            raise NotFound("Use /api/v1/tenants/<slug>/ with a signed-in session.")
        if user is None or not user.is_authenticated:
            raise NotFound()
        membership = (
            Membership.dangerously_unscoped.select_related("tenant", "tenant__plan")
            .filter(user=user, tenant__slug=slug)
            .first()
        )
        if membership is None:
            raise NotFound()
        access = Access(
            membership.tenant,
            role_scopes(membership.role),
            membership.role,
            membership=membership,
        )
    if not access.tenant.is_active:
        raise TenantSuspended()
    return access


def memberships_of(user):
    """The tenants a signed-in user belongs to (the console's tenant switcher)."""
    return (
        Membership.dangerously_unscoped.filter(user=user)
        .select_related("tenant")
        .order_by("tenant__name")
    )
