"""Nobody can create, rotate, modify or revoke a key stronger than themselves, on any path.

Regression: a key holding only `keys:read,keys:write` rotated an `admin` key and received the
successor's secret, which then read the audit log.
"""

from __future__ import annotations

import itertools

import pytest

from tenancy.models import ApiKey
from tenancy.roles import ROLE_SCOPES, Role, expand
from tenancy.services import keys
from tenancy.services.access import Access
from tenancy.services.errors import InsufficientScope

pytestmark = pytest.mark.django_db

CALLER_KEYS = {
    "keys-rw key": ["keys:read", "keys:write"],
    "keys-rw+synthesize key": ["keys:read", "keys:write", "synthesize"],
    "keys-read key": ["keys:read"],
    "admin key": ["admin"],
}
TARGETS = {
    "admin": ["admin"],
    "audit": ["audit:read"],
    "synthesize": ["synthesize"],
    "keys-rw": ["keys:read", "keys:write"],
}
ACTIONS = ["create", "rotate", "patch", "revoke", "delete"]


def _request(client, action: str, target: ApiKey | None, scopes: list[str]):
    if action == "create":
        return client.post("/api/v1/keys", {"name": "new", "scopes": scopes}, format="json")
    path = f"/api/v1/keys/{target.pk}"
    return {
        "rotate": lambda: client.post(f"{path}/rotate", {"grace_seconds": 0}, format="json"),
        "patch": lambda: client.patch(path, {"name": "renamed"}, format="json"),
        "revoke": lambda: client.post(f"{path}/revoke"),
        "delete": lambda: client.delete(path),
    }[action]()


class _Prefixed:
    """Sends the same API calls under /api/v1/ (keys) or /api/v1/tenants/<slug>/ (members)."""

    def __init__(self, client, prefix: str):
        self.client, self.prefix = client, prefix

    def __getattr__(self, method):
        call = getattr(self.client, method)
        return lambda path, *a, **kw: call(path.replace("/api/v1", self.prefix, 1), *a, **kw)


def _callers(tenant, make_key, make_member, client_for):
    for label, scopes in CALLER_KEYS.items():
        yield label, expand(scopes), client_for(make_key(tenant, scopes=scopes).token)
    for role in Role.values:
        user = make_member(tenant, role)
        yield f"{role} member", ROLE_SCOPES[role], client_for(user=user)


def test_every_caller_target_and_action(tenant, make_key, make_member, client_for):
    outcomes = []
    for label, held, client in _callers(tenant, make_key, make_member, client_for):
        prefix = "/api/v1" if "member" not in label else f"/api/v1/tenants/{tenant.slug}"
        for (target_name, target_scopes), action in itertools.product(TARGETS.items(), ACTIONS):
            target = make_key(tenant, scopes=target_scopes, name=f"target {target_name}").key
            before = ApiKey.objects.for_tenant(tenant).count()
            response = _request(_Prefixed(client, prefix), action, target, target_scopes)
            allowed = "keys:write" in held and set(expand(target_scopes)) <= set(held)
            if allowed:
                assert response.status_code in (200, 201, 204), (label, target_name, action)
            else:
                assert response.status_code == 403, (label, target_name, action, response.json())
                assert response.json()["error"]["code"] == "insufficient_scope"
                # Nothing changed: no successor, no revocation, no rename.
                target.refresh_from_db()
                assert ApiKey.objects.for_tenant(tenant).count() == before
                assert target.revoked_at is None and target.name == f"target {target_name}"
                assert target.expires_at is None
                assert "key" not in response.json()
            outcomes.append(allowed)
    assert any(outcomes) and not all(outcomes)


def test_rotated_successor_of_a_weak_caller_never_reads_the_audit_log(tenant, make_key, client_for):
    admin_key = make_key(tenant, scopes=["admin"]).key
    weak = client_for(make_key(tenant, scopes=["keys:read", "keys:write"]).token)
    response = weak.post(f"/api/v1/keys/{admin_key.pk}/rotate", {}, format="json")
    assert response.status_code == 403
    assert not hasattr(ApiKey.objects.for_tenant(tenant).get(pk=admin_key.pk), "rotated_to")


def test_services_enforce_the_rule_without_the_api(tenant, make_key):
    admin_key = make_key(tenant, scopes=["admin"]).key
    weak = Access(tenant, frozenset({"keys:read", "keys:write"}), "api_key")
    with pytest.raises(InsufficientScope):
        keys.rotate_key(weak, admin_key, grace=keys.timedelta(0))
    with pytest.raises(InsufficientScope):
        keys.update_key(weak, admin_key, name="x")
    with pytest.raises(InsufficientScope):
        keys.revoke_key(weak, admin_key)
    with pytest.raises(InsufficientScope):
        keys.create_key(weak, name="x", scopes=["audit:read"])
    # The operator (management commands) may do anything.
    assert keys.rotate_key(Access.operator(tenant), admin_key, grace=keys.timedelta(0)).token


def test_a_key_of_another_tenant_is_not_found_even_in_services(tenant, other_tenant, make_key):
    from core.errors import NotFound

    foreign = make_key(other_tenant, scopes=["synthesize"]).key
    with pytest.raises(NotFound):
        keys.revoke_key(Access.operator(tenant), foreign)


def test_members_cannot_grant_roles_stronger_than_their_own(tenant, make_member, client_for):
    from tenancy.services import tenants

    newbie = tenants.create_user("newbie@example.com", "pw-12345678")
    base = f"/api/v1/tenants/{tenant.slug}/members"
    brand_manager = client_for(user=make_member(tenant, "brand_manager"))
    assert (
        brand_manager.post(
            base, {"email": newbie.email, "role": "admin"}, format="json"
        ).status_code
        == 403
    )
    # A key with members:write but not admin cannot hand out admin or owner.
    key = Access(tenant, frozenset({"members:read", "members:write"}), "api_key")
    for role in ("admin", "owner", "developer"):
        with pytest.raises(InsufficientScope):
            tenants.add_member(key, newbie, role)
