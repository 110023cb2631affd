"""Invitations (service and API) and the tenant profile service."""

import hashlib
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.utils import timezone

from audit.models import AuditEvent
from core.errors import NotFound
from tenancy.models import Invitation, Membership
from tenancy.services import tenants
from tenancy.services.access import Access, resolve_access
from tenancy.services.errors import InsufficientScope, InvalidRequest

pytestmark = pytest.mark.django_db


def access_of(user, tenant):
    return resolve_access(user=user, slug=tenant.slug)


def events(tenant, action):
    return list(AuditEvent.objects.for_tenant(tenant).filter(tenant=tenant, action=action))


def test_invite_creates_a_digest_only_invitation_and_mails_the_link(tenant, make_member):
    owner = access_of(make_member(tenant, "owner"), tenant)
    result = tenants.invite_member(
        owner, " New.Person@Example.com ", "developer", base_url="https://console.example/"
    )
    invitation = result.invitation
    assert result.membership is None and invitation.email == "new.person@example.com"
    token = result.accept_url.rstrip("/").rsplit("/", 1)[1]
    assert result.accept_url == f"/console/invite/{token}/"
    assert invitation.token_digest == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(Invitation.objects.for_tenant(tenant).values().get())
    assert timedelta(days=6, hours=23) < invitation.expires_at - timezone.now() <= timedelta(days=7)
    assert invitation.invited_by_id == owner.membership.user_id
    [message] = mail.outbox
    assert message.to == ["new.person@example.com"]
    assert f"https://console.example/console/invite/{token}/" in message.body
    [event] = events(tenant, "member.invite")
    assert token not in str(event.after) and invitation.token_digest not in str(event.after)
    assert event.after["role"] == "developer"


def test_existing_user_is_added_directly(tenant, make_member):
    owner = access_of(make_member(tenant, "owner"), tenant)
    user = tenants.create_user("known@example.com", "pw-12345678")
    result = tenants.invite_member(owner, "KNOWN@example.com", "auditor")
    assert result.invitation is None and result.membership.user == user
    assert not mail.outbox and events(tenant, "member.add")
    with pytest.raises(InvalidRequest) as exc:
        tenants.invite_member(owner, "known@example.com", "auditor")
    assert exc.value.error_code == "member_exists"


def test_invite_applies_the_grant_rules(tenant, make_member):
    admin = access_of(make_member(tenant, "admin"), tenant)
    with pytest.raises(InsufficientScope):
        tenants.invite_member(admin, "x@example.com", "owner")
    developer = access_of(make_member(tenant, "developer"), tenant)
    with pytest.raises(InsufficientScope):
        tenants.invite_member(developer, "x@example.com", "auditor")
    key = Access(tenant, frozenset({"members:read", "members:write"}), "api_key")
    with pytest.raises(InsufficientScope):
        tenants.invite_member(key, "x@example.com", "admin")
    for bad in ("", "not-an-email", "a@b@c"):
        with pytest.raises(InvalidRequest) as exc:
            tenants.invite_member(admin, bad, "auditor")
        assert exc.value.error_code == "invalid_email"
    with pytest.raises(InvalidRequest) as exc:
        tenants.invite_member(admin, "x@example.com", "emperor")
    assert exc.value.error_code == "invalid_role"
    assert not Invitation.objects.for_tenant(tenant).exists()
    assert tenants.grantable_roles(admin) == ["admin", "brand_manager", "developer", "auditor"]
    assert tenants.grantable_roles(developer) == []


def test_accept_creates_the_user_and_membership_once(tenant, make_member):
    owner = access_of(make_member(tenant, "owner"), tenant)
    result = tenants.invite_member(owner, "joiner@example.com", "brand_manager")
    token = result.accept_url.rstrip("/").rsplit("/", 1)[1]
    with pytest.raises(InvalidRequest) as exc:
        tenants.accept_invitation(token, "short")
    assert exc.value.error_code == "invalid_password"
    with pytest.raises(InvalidRequest):
        tenants.accept_invitation(token, "password")  # too common
    membership = tenants.accept_invitation(token, "a-long-unusual-passphrase")
    assert membership.role == "brand_manager" and membership.tenant == tenant
    assert membership.user.check_password("a-long-unusual-passphrase")
    [event] = events(tenant, "member.invite_accept")
    assert event.actor_label == "joiner@example.com" and event.after["role"] == "brand_manager"
    with pytest.raises(NotFound):
        tenants.accept_invitation(token, "a-long-unusual-passphrase")
    assert Membership.objects.for_tenant(tenant).filter(user=membership.user).count() == 1


def test_expired_revoked_unknown_tokens_are_not_found(tenant, make_member):
    owner = access_of(make_member(tenant, "owner"), tenant)
    expired = tenants.invite_member(owner, "late@example.com", "auditor")
    Invitation.objects.for_tenant(tenant).filter(pk=expired.invitation.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    revoked = tenants.invite_member(owner, "gone@example.com", "auditor")
    tenants.revoke_invitation(owner, revoked.invitation)
    assert events(tenant, "member.invite_revoke")
    for url in (expired.accept_url, revoked.accept_url, "/console/invite/nonsense/"):
        token = url.rstrip("/").rsplit("/", 1)[1]
        with pytest.raises(NotFound):
            tenants.accept_invitation(token, "a-long-unusual-passphrase")
    assert not get_user_model().objects.filter(
        username__in=["late@example.com", "gone@example.com"]
    )
    with pytest.raises(InvalidRequest):
        tenants.revoke_invitation(owner, revoked.invitation)  # not pending any more


def test_a_pending_invitation_blocks_a_second_one(tenant, make_member):
    owner = access_of(make_member(tenant, "owner"), tenant)
    tenants.invite_member(owner, "twice@example.com", "auditor")
    with pytest.raises(InvalidRequest) as exc:
        tenants.invite_member(owner, "twice@example.com", "developer")
    assert exc.value.error_code == "invitation_pending"


def test_an_existing_account_must_be_signed_in_to_accept(tenant, make_member):
    owner = access_of(make_member(tenant, "owner"), tenant)
    result = tenants.invite_member(owner, "later@example.com", "auditor")
    token = result.accept_url.rstrip("/").rsplit("/", 1)[1]
    user = tenants.create_user("later@example.com", "original-password-1")
    with pytest.raises(InvalidRequest) as exc:
        tenants.accept_invitation(token, "attacker-chosen-password")
    assert exc.value.error_code == "sign_in_required"
    user.refresh_from_db()
    assert user.check_password("original-password-1")  # a link never resets a password
    membership = tenants.accept_invitation(token, user=user)
    assert membership.user == user


def test_revoke_needs_the_grant_rights_and_the_same_tenant(tenant, other_tenant, make_member):
    owner = access_of(make_member(tenant, "owner"), tenant)
    invitation = tenants.invite_member(owner, "o2@example.com", "owner").invitation
    admin = access_of(make_member(tenant, "admin"), tenant)
    with pytest.raises(InsufficientScope):
        tenants.revoke_invitation(admin, invitation)
    foreign = access_of(make_member(other_tenant, "owner"), other_tenant)
    with pytest.raises(NotFound):
        tenants.revoke_invitation(foreign, invitation)


# --- API ------------------------------------------------------------------------------
def test_api_post_members_invites_a_new_email(tenant, make_member, client_for, make_key):
    admin = client_for(user=make_member(tenant, "admin"))
    base = f"/api/v1/tenants/{tenant.slug}/members"
    response = admin.post(base, {"email": "fresh@example.com", "role": "auditor"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["invitation"] is True and body["status"] == "pending"
    assert body["accept_url"].startswith("http://testserver/console/invite/")
    token = body["accept_url"].rstrip("/").rsplit("/", 1)[1]
    tenants.accept_invitation(token, "a-long-unusual-passphrase")
    # The listing never shows a link.
    assert token not in admin.get(base).content.decode()
    # An admin key invites too; bad input is a 400 in the error shape.
    key = client_for(make_key(tenant).token)
    assert (
        key.post("/api/v1/members", {"email": "k@example.com", "role": "developer"}).status_code
        == 201
    )
    bad = key.post("/api/v1/members", {"email": "nope", "role": "developer"}, format="json")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "validation_error"


# --- Tenant profile ---------------------------------------------------------------------
def test_update_tenant_profile(tenant, make_member, client_for):
    owner = access_of(make_member(tenant, "owner"), tenant)
    tenants.update_tenant_profile(owner, name="  Acme Voice  ", legal_name=" Acme Inc. ")
    tenant.refresh_from_db()
    assert tenant.name == "Acme Voice" and tenant.legal_name == "Acme Inc."
    assert tenant.company_name == "Acme Inc."
    [event] = events(tenant, "tenant.update")
    assert event.before == {"name": "Test Co", "legal_name": ""}
    assert event.after == {"name": "Acme Voice", "legal_name": "Acme Inc."}
    for kwargs, code in [
        ({"name": "   "}, "invalid_name"),
        ({"name": "x" * 201}, "invalid_name"),
        ({"legal_name": "x" * 201}, "invalid_legal_name"),
    ]:
        with pytest.raises(InvalidRequest) as exc:
            tenants.update_tenant_profile(owner, **kwargs)
        assert exc.value.error_code == code
    developer = access_of(make_member(tenant, "developer"), tenant)
    with pytest.raises(InsufficientScope):
        tenants.update_tenant_profile(developer, name="Hijacked")


def test_api_patch_tenant(tenant, make_member, client_for, make_key):
    owner = client_for(user=make_member(tenant, "owner"))
    path = f"/api/v1/tenants/{tenant.slug}/tenant"
    response = owner.patch(path, {"legal_name": "Acme Incorporated"}, format="json")
    assert response.status_code == 200 and response.json()["legal_name"] == "Acme Incorporated"
    bad = owner.patch(path, {"name": ""}, format="json")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_name"
    developer = client_for(user=make_member(tenant, "developer"))
    assert developer.patch(path, {"name": "x"}, format="json").status_code == 403
    synth_key = client_for(make_key(tenant, scopes=["synthesize"]).token)
    assert synth_key.patch("/api/v1/tenant", {"name": "x"}, format="json").status_code == 403
    assert (
        client_for(make_key(tenant).token)
        .patch("/api/v1/tenant", {"name": "Renamed"}, format="json")
        .json()["name"]
        == "Renamed"
    )
