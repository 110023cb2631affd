"""The members console pages and the public invitation page."""

import hashlib
import time
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from audit.models import AuditEvent
from tenancy.models import Invitation, Membership
from tenancy.services import tenants
from tenancy.services.access import resolve_access

pytestmark = pytest.mark.django_db


def url(tenant, suffix=""):
    return f"/console/{tenant.slug}/members/{suffix}"


def field_error(response, field: str) -> str:
    html = response.content.decode()
    marker = f'id="id_{field}_error"'
    assert marker in html, f"no error next to {field}"
    start = html.index(">", html.index(marker)) + 1
    return html[start : html.index("</p>", start)]


def accept_url_of(response) -> str:
    html = response.content.decode()
    return html.split('id="accept-url">')[1].split("</code>")[0]


def path_of(accept_url: str) -> str:
    return accept_url.replace("http://testserver", "")


@pytest.fixture
def owner(tenant, make_member, client):
    client.force_login(make_member(tenant, "owner", email="owner@example.com"))
    return client


def invite(client, tenant, email="new@example.com", role="developer"):
    return client.post(url(tenant, "invite/"), {"email": email, "role": role})


def test_roles_see_and_use_what_their_scopes_allow(client, tenant, make_member):
    target = tenants.membership_for(make_member(tenant, "auditor", email="t@example.com"), tenant)
    for role, can_write in [
        ("owner", True),
        ("admin", True),
        ("brand_manager", False),
        ("developer", False),
        ("auditor", False),
    ]:
        client.force_login(make_member(tenant, role))
        page = client.get(url(tenant))
        assert page.status_code == 200, role
        assert "t@example.com" in page.content.decode()
        assert ("Invite a member" in page.content.decode()) == can_write, role
        if not can_write:
            assert invite(client, tenant, f"{role}@new.example.com").status_code == 404
            assert (
                client.post(url(tenant, f"{target.pk}/role/"), {"role": "admin"}).status_code == 404
            )
            assert client.post(url(tenant, f"{target.pk}/remove/")).status_code == 404
    target.refresh_from_db()
    assert target.role == "auditor" and not Invitation.objects.for_tenant(tenant).exists()


def test_invite_shows_the_link_once_and_mails_it(owner, tenant, client):
    response = invite(owner, tenant, "Fresh@Example.com", "auditor")
    assert response.status_code == 201 and response["Cache-Control"] == "no-store"
    link = accept_url_of(response)
    assert link.startswith("http://testserver/console/invite/")
    assert 'data-copy="#accept-url"' in response.content.decode()
    assert "you will not see it again" in response.content.decode()
    assert link in mail.outbox[0].body and mail.outbox[0].to == ["fresh@example.com"]
    listed = owner.get(url(tenant)).content.decode()
    assert "fresh@example.com" in listed and link not in listed  # pending, link gone
    token = link.rstrip("/").rsplit("/", 1)[1]
    assert token not in str(dict(owner.session))
    for event in AuditEvent.objects.for_tenant(tenant).filter(tenant=tenant):
        assert token not in str(event.before) + str(event.after)


def test_invite_an_existing_user_adds_them(owner, tenant):
    tenants.create_user("known@example.com", "pw-12345678")
    response = invite(owner, tenant, "known@example.com", "developer")
    assert response.status_code == 302
    assert Membership.objects.for_tenant(tenant).filter(user__username="known@example.com")
    again = invite(owner, tenant, "known@example.com", "developer")
    assert again.status_code == 400 and "already a member" in field_error(again, "email")


@pytest.mark.parametrize(
    "email, role, field, message",
    [
        ("", "developer", "email", "valid email"),
        ("not-an-email", "developer", "email", "valid email"),
        ("x@example.com", "emperor", "role", "valid choice"),
    ],
)
def test_bad_invite_input_is_a_400_next_to_the_field(owner, tenant, email, role, field, message):
    response = invite(owner, tenant, email, role)
    assert response.status_code == 400 and message in field_error(response, field)


def test_an_admin_cannot_grant_owner(client, tenant, make_member):
    client.force_login(make_member(tenant, "admin"))
    page = client.get(url(tenant)).content.decode()
    assert 'value="owner"' not in page and 'value="admin"' in page
    response = invite(client, tenant, "boss@example.com", "owner")
    assert response.status_code == 400
    assert "Only an owner" in field_error(response, "role")
    owner_member = tenants.membership_for(make_member(tenant, "owner"), tenant)
    demote = client.post(url(tenant, f"{owner_member.pk}/role/"), {"role": "auditor"})
    assert demote.status_code == 403 and "Only an owner" in demote.content.decode()
    owner_member.refresh_from_db()
    assert owner_member.role == "owner"


def test_change_role_and_remove(owner, tenant, make_member):
    member = tenants.membership_for(make_member(tenant, "developer", email="d@example.com"), tenant)
    changed = owner.post(url(tenant, f"{member.pk}/role/"), {"role": "auditor"}, follow=True)
    assert changed.status_code == 200 and "is now Auditor" in changed.content.decode()
    member.refresh_from_db()
    assert member.role == "auditor"
    bad = owner.post(url(tenant, f"{member.pk}/role/"), {"role": "emperor"})
    assert bad.status_code == 400
    page = owner.get(url(tenant)).content.decode()
    assert "data-confirm=" in page and f"{member.pk}/remove/" in page
    removed = owner.post(url(tenant, f"{member.pk}/remove/"))
    assert removed.status_code == 302
    assert not Membership.objects.for_tenant(tenant).filter(pk=member.pk).exists()
    # The last owner stays.
    me = Membership.objects.for_tenant(tenant).get(role="owner")
    last = owner.post(url(tenant, f"{me.pk}/remove/"))
    assert last.status_code == 400 and "at least one owner" in last.content.decode()
    demote = owner.post(url(tenant, f"{me.pk}/role/"), {"role": "admin"})
    assert demote.status_code == 400 and "at least one owner" in demote.content.decode()


def test_revoke_invitation(owner, tenant):
    link = accept_url_of(invite(owner, tenant, "soon@example.com"))
    invitation = Invitation.objects.for_tenant(tenant).get()
    page = owner.get(url(tenant)).content.decode()
    assert f"invitations/{invitation.pk}/revoke/" in page
    assert owner.post(url(tenant, f"invitations/{invitation.pk}/revoke/")).status_code == 302
    invitation.refresh_from_db()
    assert invitation.status == "revoked"
    assert AuditEvent.objects.for_tenant(tenant).filter(action="member.invite_revoke").exists()
    gone = owner.get(path_of(link))
    assert gone.status_code == 404 and "does not work" in gone.content.decode()


def test_another_tenants_member_and_invitation_are_404(owner, tenant, other_tenant, make_member):
    foreign_owner = resolve_access(user=make_member(other_tenant, "owner"), slug=other_tenant.slug)
    foreign_member = tenants.membership_for(make_member(other_tenant, "developer"), other_tenant)
    foreign_invite = tenants.invite_member(foreign_owner, "g@example.com", "auditor").invitation
    for path, data in [
        (url(tenant, f"{foreign_member.pk}/role/"), {"role": "auditor"}),
        (url(tenant, f"{foreign_member.pk}/remove/"), {}),
        (url(tenant, f"invitations/{foreign_invite.pk}/revoke/"), {}),
    ]:
        assert owner.post(path, data).status_code == 404, path
    foreign_member.refresh_from_db()
    foreign_invite.refresh_from_db()
    assert foreign_member.role == "developer" and foreign_invite.status == "pending"
    assert owner.get(url(tenant).replace(tenant.slug, other_tenant.slug)).status_code == 404


def test_accept_sets_a_password_signs_in_and_lands_on_the_dashboard(owner, tenant, client):
    link = path_of(accept_url_of(invite(owner, tenant, "joiner@example.com", "brand_manager")))
    owner.logout()
    page = client.get(link)
    assert page.status_code == 200 and "Join" in page.content.decode()
    weak = client.post(link, {"password": "password", "password_again": "password"})
    assert weak.status_code == 400 and "too common" in field_error(weak, "password")
    short = client.post(link, {"password": "a1", "password_again": "a1"})
    assert short.status_code == 400 and "too short" in field_error(short, "password")
    differ = client.post(link, {"password": "long-unusual-1", "password_again": "other-2"})
    assert differ.status_code == 400 and "differ" in field_error(differ, "password_again")
    good = client.post(
        link,
        {"password": "a-long-unusual-passphrase", "password_again": "a-long-unusual-passphrase"},
    )
    assert good.status_code == 302 and good["Location"] == f"/console/{tenant.slug}/"
    assert client.get(good["Location"]).status_code == 200  # signed in
    membership = Membership.objects.for_tenant(tenant).get(user__username="joiner@example.com")
    assert membership.role == "brand_manager"
    assert AuditEvent.objects.for_tenant(tenant).filter(action="member.invite_accept").exists()
    # The link worked once.
    client.logout()
    used = client.get(link)
    assert used.status_code == 404 and "does not work" in used.content.decode()
    assert client.post(link, {"password": "x", "password_again": "x"}).status_code == 404


def test_unknown_and_expired_links_are_a_clear_404(owner, tenant, client):
    link = path_of(accept_url_of(invite(owner, tenant, "late@example.com")))
    Invitation.objects.for_tenant(tenant).update(expires_at=timezone.now() - timedelta(minutes=1))
    owner.logout()
    for path in (link, "/console/invite/nonsense/", "/console/invite/" + "x" * 500 + "/"):
        response = client.get(path)
        assert response.status_code == 404 and "does not work" in response.content.decode()


def test_accept_is_rate_limited(owner, tenant, client):
    link = path_of(accept_url_of(invite(owner, tenant, "target@example.com")))
    owner.logout()
    from django_ratelimit.core import _get_window

    # django-ratelimit counts in fixed windows offset per key value (here the token's digest):
    # start with time to spare so the burst stays in one window.
    token = link.rstrip("/").rsplit("/", 1)[1]
    remaining = _get_window(hashlib.sha256(token.encode()).hexdigest(), 60) - time.time()
    if remaining < 15:
        time.sleep(remaining + 0.5)
    statuses = [
        client.post(
            link, {"password": "a", "password_again": "a"}, REMOTE_ADDR=f"10.0.0.{n}"
        ).status_code
        for n in range(12)
    ]
    assert statuses[:10] == [400] * 10 and statuses[10:] == [429, 429]


def test_members_page_query_budget(owner, tenant, make_member, page_queries):
    access = resolve_access(user=make_member(tenant, "admin"), slug=tenant.slug)
    for n in range(30):
        make_member(tenant, ["developer", "auditor", "brand_manager"][n % 3])
        tenants.invite_member(access, f"invitee{n}@example.com", "auditor")
    with page_queries():
        response = owner.get(url(tenant))
    assert response.status_code == 200
    assert "invitee29@example.com" in response.content.decode()
    assert "Page 1 of 2" in response.content.decode()
