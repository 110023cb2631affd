"""The API keys console pages: roles, bad input, the one-time secret, isolation, queries."""

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from tenancy.models import ApiKey

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner(tenant, make_member, client):
    client.force_login(make_member(tenant, "owner", email="owner@example.com"))
    return client


def url(tenant, suffix=""):
    return f"/console/{tenant.slug}/keys/{suffix}"


def create(client, tenant, **fields):
    data = {"name": "mobile app", "scopes": ["synthesize"], **fields}
    return client.post(url(tenant, "new/"), data)


def field_error(response, field: str) -> str:
    """The error rendered next to a field (components/field.html)."""
    html = response.content.decode()
    marker = f'id="id_{field}_error"'
    assert marker in html, f"no error next to {field}"
    start = html.index(">", html.index(marker)) + 1
    return html[start : html.index("</p>", start)]


def test_roles_see_and_use_what_their_scopes_allow(client, tenant, make_member, make_key):
    key = make_key(tenant, scopes=["synthesize"]).key
    for role, can_read, can_write in [
        ("owner", True, True),
        ("admin", True, True),
        ("developer", True, True),
        ("auditor", True, False),
        ("brand_manager", False, False),
    ]:
        client.force_login(make_member(tenant, role))
        listed = client.get(url(tenant))
        assert listed.status_code == (200 if can_read else 404), role
        if can_read:
            assert key.masked in listed.content.decode()
            assert ("Create key" in listed.content.decode()) == can_write, role
            assert ("/revoke/" in listed.content.decode()) == can_write, role
        expected = 200 if can_write else 404
        assert client.get(url(tenant, "new/")).status_code == expected, role
        assert client.get(url(tenant, f"{key.pk}/rotate/")).status_code == expected, role
        assert client.get(url(tenant, f"{key.pk}/edit/")).status_code == expected, role
    # The auditor's POSTs are refused too, and change nothing.
    client.force_login(make_member(tenant, "auditor"))
    assert create(client, tenant).status_code == 404
    assert client.post(url(tenant, f"{key.pk}/revoke/")).status_code == 404
    assert client.post(url(tenant, f"{key.pk}/rotate/"), {"grace": "0"}).status_code == 404
    key.refresh_from_db()
    assert key.status == "active" and ApiKey.objects.for_tenant(tenant).count() == 1


def test_create_shows_the_secret_once_and_stores_only_a_digest(owner, tenant, client_for):
    expires = (timezone.now() + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M")
    response = create(
        owner,
        tenant,
        scopes=["synthesize", "usage:read"],
        expires_at=expires,
        allowed_ips="10.0.0.0/8, 192.168.1.7\n2001:db8::/32",
        monthly_character_limit="5000",
    )
    assert response.status_code == 201
    assert response["Cache-Control"] == "no-store"
    key = ApiKey.objects.for_tenant(tenant).get()
    html = response.content.decode()
    token = html.split('id="new-secret">')[1].split("</code>")[0]
    assert token.startswith(key.prefix) and token.endswith(key.last4)
    assert 'data-copy="#new-secret"' in html and "you will not see it again" in html
    assert key.scopes == ["synthesize", "usage:read"]
    assert key.allowed_ips == ["10.0.0.0/8", "192.168.1.7/32", "2001:db8::/32"]
    assert key.monthly_character_limit == 5000 and key.expires_at is not None
    # Never in the database in clear, never in the audit log, not on the list, not in the
    # session: the list (what a reload lands on) and every later page lack it.
    secret = token.rsplit("_", 1)[1]
    assert secret not in key.digest and key.digest != secret
    for event in AuditEvent.objects.for_tenant(tenant).filter(tenant=tenant):
        assert secret not in str(event.before) + str(event.after) + event.target_repr
    assert token not in owner.get(url(tenant)).content.decode()
    assert secret not in str(dict(owner.session))
    # It works against the real API, from an allowed address only.
    api = client_for(token)
    assert api.get("/api/v1/tenant", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert api.get("/api/v1/tenant", REMOTE_ADDR="8.8.8.8").status_code == 403


@pytest.mark.parametrize(
    "fields, field, message",
    [
        ({"name": "   "}, "name", "Give the key a name"),
        ({"name": "x" * 101}, "name", "at most 100"),
        ({"allowed_ips": "10.0.0.0/33"}, "allowed_ips", "Invalid IP"),
        ({"allowed_ips": "not-an-ip"}, "allowed_ips", "Invalid IP"),
        ({"expires_at": "2001-01-01T00:00"}, "expires_at", "future"),
        ({"expires_at": "tomorrow"}, "expires_at", "valid date"),
        ({"scopes": ["synthesize", "nope"]}, "scopes", "not one of the available"),
        ({"scopes": []}, "scopes", "at least one scope"),
        ({"monthly_character_limit": "-1"}, "monthly_character_limit", "0 or more"),
        ({"monthly_character_limit": "many"}, "monthly_character_limit", "whole number"),
    ],
)
def test_bad_input_is_a_400_with_the_message_next_to_the_field(
    owner, tenant, fields, field, message
):
    response = create(owner, tenant, **fields)
    assert response.status_code == 400
    assert message in field_error(response, field)
    assert not ApiKey.objects.for_tenant(tenant).exists()


def test_every_bad_field_is_reported_at_once(owner, tenant):
    response = create(
        owner, tenant, name=" ", allowed_ips="not-an-ip", monthly_character_limit="-1"
    )
    assert response.status_code == 400
    assert "Give the key a name" in field_error(response, "name")
    assert "Invalid IP" in field_error(response, "allowed_ips")
    assert "0 or more" in field_error(response, "monthly_character_limit")


def test_a_developer_cannot_grant_scopes_they_lack(client, tenant, make_member):
    client.force_login(make_member(tenant, "developer"))
    form = client.get(url(tenant, "new/")).content.decode()
    assert 'value="synthesize"' in form
    assert 'value="admin"' not in form and 'value="members:write"' not in form
    for scopes in (["admin"], ["synthesize", "members:write"]):
        response = create(client, tenant, scopes=scopes)
        assert response.status_code == 400
        assert "scopes you do not have" in field_error(response, "scopes")
    assert not ApiKey.objects.for_tenant(tenant).exists()


def test_developer_cannot_touch_a_key_holding_more_than_they_do(
    client, tenant, make_member, make_key
):
    admin_key = make_key(tenant).key  # every scope
    client.force_login(make_member(tenant, "developer"))
    listed = client.get(url(tenant)).content.decode()
    assert "Holds scopes you do not have" in listed
    assert client.post(url(tenant, f"{admin_key.pk}/revoke/")).status_code == 403
    assert client.post(url(tenant, f"{admin_key.pk}/rotate/"), {"grace": "0"}).status_code == 403
    assert client.post(url(tenant, f"{admin_key.pk}/edit/"), {"name": "x"}).status_code == 403
    admin_key.refresh_from_db()
    assert admin_key.status == "active" and admin_key.name == "test key"


def test_rotate_with_grace_shows_the_new_secret_once(owner, tenant, make_key, client_for):
    old = make_key(tenant, scopes=["synthesize"], name="backend")
    form = owner.get(url(tenant, f"{old.key.pk}/rotate/")).content.decode()
    for label in ("None: the old key stops now", "1 hour", "24 hours", "7 days"):
        assert label in form
    response = owner.post(url(tenant, f"{old.key.pk}/rotate/"), {"grace": "3600"})
    assert response.status_code == 201 and response["Cache-Control"] == "no-store"
    new = ApiKey.objects.for_tenant(tenant).get(rotated_from=old.key)
    token = response.content.decode().split('id="new-secret">')[1].split("</code>")[0]
    assert token.startswith(new.prefix) and "keeps working until" in response.content.decode()
    old.key.refresh_from_db()
    assert timedelta(minutes=59) < old.key.expires_at - timezone.now() <= timedelta(hours=1)
    assert client_for(token).get("/api/v1/tenant").status_code == 200
    assert client_for(old.token).get("/api/v1/tenant").status_code == 200  # grace
    assert token not in owner.get(url(tenant)).content.decode()
    # A second rotation of the same key, and a grace outside the choices, are refused.
    again = owner.post(url(tenant, f"{old.key.pk}/rotate/"), {"grace": "0"})
    assert again.status_code == 400 and "already been rotated" in again.content.decode()
    other = make_key(tenant, scopes=["synthesize"]).key
    bad = owner.post(url(tenant, f"{other.pk}/rotate/"), {"grace": str(30 * 86400)})
    assert bad.status_code == 400 and "valid choice" in field_error(bad, "grace")


def test_rotate_without_grace_stops_the_old_key(owner, tenant, make_key, client_for):
    old = make_key(tenant, scopes=["synthesize"])
    assert owner.post(url(tenant, f"{old.key.pk}/rotate/"), {"grace": "0"}).status_code == 201
    assert client_for(old.token).get("/api/v1/tenant").status_code == 401


def test_revoke_and_edit(owner, tenant, make_key, client_for):
    issued = make_key(tenant, scopes=["synthesize"], name="old name")
    edit = owner.post(
        url(tenant, f"{issued.key.pk}/edit/"),
        {"name": "  new name ", "allowed_ips": "10.0.0.0/8", "monthly_character_limit": ""},
    )
    assert edit.status_code == 302
    issued.key.refresh_from_db()
    assert issued.key.name == "new name" and issued.key.allowed_ips == ["10.0.0.0/8"]
    bad = owner.post(url(tenant, f"{issued.key.pk}/edit/"), {"name": "", "allowed_ips": "x"})
    assert bad.status_code == 400 and "Give the key a name" in field_error(bad, "name")
    revoked = owner.post(url(tenant, f"{issued.key.pk}/revoke/"), follow=True)
    assert revoked.status_code == 200 and "Revoked" in revoked.content.decode()
    assert client_for(issued.token).get("/api/v1/tenant").status_code == 401
    assert (
        AuditEvent.objects.for_tenant(tenant).filter(tenant=tenant, action="apikey.revoke").exists()
    )
    assert owner.get(url(tenant, f"{issued.key.pk}/revoke/")).status_code == 405


def test_another_tenants_key_is_a_404_on_every_action(owner, tenant, other_tenant, make_key):
    foreign = make_key(other_tenant, scopes=["synthesize"]).key
    for method, suffix, data in [
        ("get", "edit/", None),
        ("post", "edit/", {"name": "mine now"}),
        ("get", "rotate/", None),
        ("post", "rotate/", {"grace": "0"}),
        ("post", "revoke/", None),
    ]:
        response = getattr(owner, method)(url(tenant, f"{foreign.pk}/{suffix}"), data or {})
        assert response.status_code == 404, (method, suffix)
    foreign.refresh_from_db()
    assert foreign.status == "active" and foreign.name == "test key"
    assert not ApiKey.objects.for_tenant(other_tenant).filter(rotated_from=foreign).exists()


def test_filters_and_pagination(owner, tenant, make_key):
    make_key(tenant, scopes=["synthesize"], name="alpha live")
    revoked = make_key(tenant, scopes=["synthesize"], name="beta revoked").key
    revoked.revoked_at = timezone.now()
    revoked.save()
    expired = make_key(tenant, scopes=["synthesize"], name="gamma expired").key
    ApiKey.objects.for_tenant(tenant).filter(pk=expired.pk).update(
        expires_at=timezone.now() - timedelta(days=1)
    )

    def names(query):
        html = owner.get(url(tenant) + query).content.decode()
        return {n for n in ("alpha live", "beta revoked", "gamma expired") if n in html}

    assert names("") == {"alpha live", "beta revoked", "gamma expired"}
    assert names("?status=active") == {"alpha live"}
    assert names("?status=revoked") == {"beta revoked"}
    assert names("?status=expired") == {"gamma expired"}
    assert names("?q=GAMMA") == {"gamma expired"}
    assert "No keys match" in owner.get(url(tenant) + "?q=zzz").content.decode()
    fragment = owner.get(url(tenant) + "?status=revoked", HTTP_HX_REQUEST="true")
    assert 'id="keys-table"' in fragment.content.decode()
    assert "<html" not in fragment.content.decode()


def test_empty_state(owner, tenant):
    html = owner.get(url(tenant)).content.decode()
    assert "No API keys yet" in html and url(tenant, "new/") in html


def test_list_query_budget(owner, tenant, make_key, make_member, page_queries):
    creator = make_member(tenant, "developer")
    for n in range(30):
        issued = make_key(tenant, scopes=["synthesize"], name=f"key {n}", created_by=creator)
        if n % 3 == 0:
            issued.key.revoked_at = timezone.now()
            issued.key.save()
    with page_queries():
        response = owner.get(url(tenant))
    assert response.status_code == 200 and "Page 1 of 2" in response.content.decode()
    with page_queries():
        assert owner.get(url(tenant) + "?page=2&status=revoked").status_code == 200
