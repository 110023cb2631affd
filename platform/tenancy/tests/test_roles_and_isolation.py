"""The permission matrix for members, suspended tenants, and cross-tenant probes (404)."""

import pytest

from core.scoping import TenantScopeError
from tenancy.api.base import TenantScopedViewSet
from tenancy.models import ApiKey, Tenant
from tenancy.services import tenants

pytestmark = pytest.mark.django_db

# (method, path, body) -> minimum scope; the expectations below come from ROLE_SCOPES.
ENDPOINTS = {
    "tenant": ("get", "tenant", None),
    "list_keys": ("get", "keys", None),
    "create_key": ("post", "keys", {"name": "k", "scopes": ["voices:read"]}),
    "list_members": ("get", "members", None),
    "usage": ("get", "usage", None),
    "audit": ("get", "audit-events", None),
    "audit_export": ("get", "audit-events/export", None),
}
ALLOWED = {
    "owner": set(ENDPOINTS),
    "admin": set(ENDPOINTS),
    "brand_manager": {"tenant", "list_members", "usage"},
    "developer": {"tenant", "list_keys", "create_key", "list_members", "usage"},
    "auditor": {"tenant", "list_keys", "list_members", "usage", "audit", "audit_export"},
}


@pytest.mark.parametrize("role", sorted(ALLOWED))
def test_role_matrix(tenant, make_member, client_for, role):
    client = client_for(user=make_member(tenant, role))
    for name, (method, path, body) in ENDPOINTS.items():
        response = getattr(client, method)(
            f"/api/v1/tenants/{tenant.slug}/{path}", body, format="json"
        )
        expected = name in ALLOWED[role]
        assert (response.status_code < 400) == expected, (role, name, response.status_code)
        if not expected:
            assert response.status_code == 403
            assert response.json()["error"]["code"] == "insufficient_scope"


def test_auditor_is_read_only_everywhere(tenant, make_member, make_key, client_for):
    auditor = client_for(user=make_member(tenant, "auditor"))
    key = make_key(tenant)
    base = f"/api/v1/tenants/{tenant.slug}"
    assert auditor.post(f"{base}/keys/{key.key.pk}/revoke").status_code == 403
    assert auditor.post(f"{base}/keys/{key.key.pk}/rotate", {}, format="json").status_code == 403
    assert auditor.delete(f"{base}/keys/{key.key.pk}").status_code == 403
    assert (
        auditor.post(
            f"{base}/members", {"email": "x@example.com", "role": "admin"}, format="json"
        ).status_code
        == 403
    )


def test_member_management_rules(tenant, make_member, client_for):
    owner = make_member(tenant, "owner")
    admin_user = make_member(tenant, "admin")
    newbie = tenants.create_user("new@example.com", "pw-12345678")
    admin = client_for(user=admin_user)
    base = f"/api/v1/tenants/{tenant.slug}/members"
    # Admins add members but cannot create owners.
    assert (
        admin.post(base, {"email": newbie.email, "role": "owner"}, format="json").status_code == 403
    )
    created = admin.post(base, {"email": newbie.email, "role": "developer"}, format="json")
    assert created.status_code == 201
    membership_id = created.json()["id"]
    assert (
        admin.patch(f"{base}/{membership_id}", {"role": "auditor"}, format="json").json()["role"]
        == "auditor"
    )
    # The last owner cannot leave or be demoted.
    owner_client = client_for(user=owner)
    owner_membership = tenants.membership_for(owner, tenant)
    demote = owner_client.patch(f"{base}/{owner_membership.pk}", {"role": "admin"}, format="json")
    assert demote.status_code == 400 and demote.json()["error"]["code"] == "last_owner"
    assert owner_client.delete(f"{base}/{membership_id}").status_code == 204


def test_signed_in_user_must_address_a_tenant(tenant, make_member, client_for):
    client = client_for(user=make_member(tenant, "owner"))
    assert client.get("/api/v1/keys").status_code == 404


def test_suspended_tenant_is_refused(tenant, make_key, make_member, client_for):
    key_client = client_for(make_key(tenant).token)
    member_client = client_for(user=make_member(tenant, "owner"))
    tenants.set_tenant_status(tenant, Tenant.Status.SUSPENDED)
    for response in (
        key_client.get("/api/v1/tenant"),
        member_client.get(f"/api/v1/tenants/{tenant.slug}/tenant"),
    ):
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "tenant_suspended"
    tenants.set_tenant_status(tenant, Tenant.Status.ACTIVE)
    assert key_client.get("/api/v1/tenant").status_code == 200


def test_cross_tenant_probes_are_404(tenant, other_tenant, make_key, make_member, client_for):
    victim_key = make_key(tenant)
    victim_member = tenants.membership_for(make_member(tenant, "developer"), tenant)
    victim_client = client_for(victim_key.token)
    victim_client.get("/api/v1/tenant")
    victim_event = victim_client.get("/api/v1/audit-events").json()["results"][0]

    attacker = client_for(make_key(other_tenant).token)
    attacker_user = client_for(user=make_member(other_tenant, "owner"))
    probes = [
        ("get", f"/api/v1/keys/{victim_key.key.pk}"),
        ("post", f"/api/v1/keys/{victim_key.key.pk}/revoke"),
        ("post", f"/api/v1/keys/{victim_key.key.pk}/rotate"),
        ("delete", f"/api/v1/keys/{victim_key.key.pk}"),
        ("get", f"/api/v1/members/{victim_member.pk}"),
        ("patch", f"/api/v1/members/{victim_member.pk}"),
        ("delete", f"/api/v1/members/{victim_member.pk}"),
        ("get", f"/api/v1/usage?api_key={victim_key.key.pk}"),
        ("get", f"/api/v1/tenants/{tenant.slug}/tenant"),
        ("get", f"/api/v1/tenants/{tenant.slug}/keys"),
        ("get", "/api/v1/tenants/no-such-tenant/keys"),
    ]
    for method, path in probes:
        response = getattr(attacker, method)(path, {}, format="json")
        assert response.status_code == 404, (method, path, response.status_code)
        assert response.json()["error"]["code"] == "not_found"
    for method, path in probes[-3:]:
        assert getattr(attacker_user, method)(path).status_code == 404
    # Nothing was changed by the probes.
    assert ApiKey.objects.for_tenant(tenant).get(pk=victim_key.key.pk).status == "active"
    # Lists never show the other tenant's rows.
    listed = attacker.get("/api/v1/keys").json()["results"]
    assert str(victim_key.key.pk) not in {k["id"] for k in listed}
    events = attacker.get("/api/v1/audit-events?page_size=500").json()["results"]
    assert victim_event["hash"] not in {e["hash"] for e in events}
    # Audit events are numbered per tenant: the same number names the caller's own event.
    same_seq = attacker.get(f"/api/v1/audit-events/{victim_event['seq']}")
    assert same_seq.status_code in (200, 404)
    assert same_seq.status_code == 404 or same_seq.json()["hash"] != victim_event["hash"]


def test_scoped_manager_fails_closed(tenant):
    with pytest.raises(TenantScopeError):
        list(ApiKey.objects.all())
    with pytest.raises(TenantScopeError):
        ApiKey.objects.for_tenant(None)
    assert ApiKey.objects.for_tenant(tenant).count() == 0


def test_views_cannot_override_get_queryset():
    with pytest.raises(TypeError):
        type("Leaky", (TenantScopedViewSet,), {"get_queryset": lambda self: None})
