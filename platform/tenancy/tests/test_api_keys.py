"""API key lifecycle: issue, hashing, auth headers, revoke, expiry, rotation grace, scopes,
IP allow-list, last_used_at."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tenancy.models import ApiKey
from tenancy.services import keys

pytestmark = pytest.mark.django_db


def error_code(response):
    return response.json()["error"]["code"]


def test_key_is_shown_once_and_stored_hashed(tenant, make_key, client_for):
    issued = make_key(tenant, scopes=["synthesize"])
    assert keys.TOKEN_PATTERN.match(issued.token)
    row = ApiKey.objects.for_tenant(tenant).get(pk=issued.key.pk)
    secret = issued.token.rsplit("_", 1)[1]
    assert secret not in row.digest and row.digest != secret and len(row.digest) == 64
    assert row.last4 == secret[-4:]
    assert issued.token.startswith(row.prefix)
    # Listing never shows the secret again.
    admin = client_for(make_key(tenant).token)
    listed = admin.get(f"/api/v1/keys/{row.pk}").json()
    assert "key" not in listed and secret not in str(listed)
    assert listed["masked"].endswith(row.last4)


@pytest.mark.parametrize("header", ["bearer", "x-api-key"])
def test_both_auth_headers_work(tenant, make_key, client_for, header):
    client = client_for(make_key(tenant).token, header=header)
    assert client.get("/api/v1/tenant").status_code == 200


def test_missing_and_invalid_keys_are_401(tenant, make_key, client_for):
    response = client_for().get("/api/v1/tenant")
    assert response.status_code == 401 and error_code(response) == "not_authenticated"
    token = make_key(tenant).token
    for bad in [token[:-1] + ("A" if token[-1] != "A" else "B"), "tb_live_nope", "garbage"]:
        response = client_for(bad).get("/api/v1/tenant")
        assert response.status_code == 401, bad
        assert error_code(response) == "invalid_api_key"


def test_revoked_key_fails(tenant, make_key, client_for):
    issued = make_key(tenant)
    admin = client_for(make_key(tenant).token)
    assert admin.post(f"/api/v1/keys/{issued.key.pk}/revoke").json()["status"] == "revoked"
    response = client_for(issued.token).get("/api/v1/tenant")
    assert response.status_code == 401 and error_code(response) == "api_key_revoked"


def test_expired_key_fails(tenant, make_key, client_for):
    issued = make_key(tenant, expires_at=timezone.now() + timedelta(hours=1))
    assert client_for(issued.token).get("/api/v1/tenant").status_code == 200
    ApiKey.objects.for_tenant(tenant).filter(pk=issued.key.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    response = client_for(issued.token).get("/api/v1/tenant")
    assert response.status_code == 401 and error_code(response) == "api_key_expired"


def test_creating_a_key_in_the_past_is_rejected(api):
    response = api.post(
        "/api/v1/keys",
        {"name": "x", "scopes": ["synthesize"], "expires_at": "2001-01-01T00:00:00Z"},
        format="json",
    )
    assert response.status_code == 400 and error_code(response) == "invalid_expiry"


def test_rotation_keeps_old_key_during_grace_then_fails(tenant, make_key, client_for):
    old = make_key(tenant, scopes=["synthesize", "voices:read"], name="billing app")
    admin = client_for(make_key(tenant).token)
    response = admin.post(
        f"/api/v1/keys/{old.key.pk}/rotate", {"grace_seconds": 3600}, format="json"
    )
    assert response.status_code == 201
    new = response.json()
    assert new["key"] != old.token and new["scopes"] == ["synthesize", "voices:read"]
    assert new["name"] == "billing app" and new["rotated_from"] == str(old.key.pk)
    # Both work during the grace period.
    assert client_for(old.token).get("/api/v1/voices-probe").status_code == 404  # any route
    assert client_for(old.token).get("/api/v1/tenant").status_code == 200
    assert client_for(new["key"]).get("/api/v1/tenant").status_code == 200
    # A rotated key cannot be rotated twice.
    again = admin.post(f"/api/v1/keys/{old.key.pk}/rotate", {"grace_seconds": 10}, format="json")
    assert again.status_code == 400 and error_code(again) == "key_already_rotated"
    # After the grace period the old key fails, the new one keeps working.
    ApiKey.objects.for_tenant(tenant).filter(pk=old.key.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert error_code(client_for(old.token).get("/api/v1/tenant")) == "api_key_expired"
    assert client_for(new["key"]).get("/api/v1/tenant").status_code == 200


def test_rotation_grace_is_bounded(tenant, make_key, api):
    old = make_key(tenant)
    response = api.post(
        f"/api/v1/keys/{old.key.pk}/rotate", {"grace_seconds": 30 * 86400}, format="json"
    )
    assert response.status_code == 400 and error_code(response) == "invalid_grace"


def test_scopes_are_enforced(tenant, make_key, client_for):
    synth_only = client_for(make_key(tenant, scopes=["synthesize"]).token)
    response = synth_only.get("/api/v1/keys")
    assert response.status_code == 403 and error_code(response) == "insufficient_scope"
    assert error_code(synth_only.get("/api/v1/audit-events")) == "insufficient_scope"
    assert error_code(synth_only.get("/api/v1/usage")) == "insufficient_scope"
    reader = client_for(make_key(tenant, scopes=["keys:read"]).token)
    assert reader.get("/api/v1/keys").status_code == 200
    created = reader.post("/api/v1/keys", {"name": "x", "scopes": ["synthesize"]}, format="json")
    assert created.status_code == 403


def test_a_key_cannot_grant_more_than_it_holds(tenant, make_key, client_for):
    writer = client_for(make_key(tenant, scopes=["keys:write", "synthesize"]).token)
    ok = writer.post("/api/v1/keys", {"name": "a", "scopes": ["synthesize"]}, format="json")
    assert ok.status_code == 201
    escalate = writer.post("/api/v1/keys", {"name": "b", "scopes": ["admin"]}, format="json")
    assert escalate.status_code == 403 and error_code(escalate) == "insufficient_scope"


def test_ip_allow_list(tenant, make_key, client_for):
    issued = make_key(tenant, allowed_ips=["10.1.0.0/16", "192.0.2.7"])
    client = client_for(issued.token)
    assert client.get("/api/v1/tenant", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/api/v1/tenant", REMOTE_ADDR="192.0.2.7").status_code == 200
    denied = client.get("/api/v1/tenant", REMOTE_ADDR="10.2.0.1")
    assert denied.status_code == 403 and error_code(denied) == "ip_not_allowed"


def test_invalid_allowed_ips_rejected(api):
    response = api.post(
        "/api/v1/keys",
        {"name": "x", "scopes": ["synthesize"], "allowed_ips": ["not-an-ip"]},
        format="json",
    )
    assert response.status_code == 400 and error_code(response) == "invalid_ip"


def test_last_used_is_recorded(tenant, make_key, client_for):
    issued = make_key(tenant)
    assert issued.key.last_used_at is None
    client_for(issued.token).get("/api/v1/tenant", REMOTE_ADDR="127.0.0.9")
    row = ApiKey.objects.for_tenant(tenant).get(pk=issued.key.pk)
    assert row.last_used_at is not None and row.last_used_ip == "127.0.0.9"


def test_delete_revokes(tenant, make_key, api, client_for):
    issued = make_key(tenant)
    assert api.delete(f"/api/v1/keys/{issued.key.pk}").status_code == 204
    assert error_code(client_for(issued.token).get("/api/v1/tenant")) == "api_key_revoked"
    listed = api.get("/api/v1/keys?status=revoked").json()
    assert [k["id"] for k in listed["results"]] == [str(issued.key.pk)]


def test_key_settings_can_be_changed_and_are_audited(tenant, make_key, api):
    from audit.models import AuditEvent

    issued = make_key(tenant)
    response = api.patch(
        f"/api/v1/keys/{issued.key.pk}",
        {"name": "renamed", "monthly_character_limit": 500, "allowed_ips": ["10.0.0.0/8"]},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert response.json()["monthly_character_limit"] == 500
    event = AuditEvent.objects.for_tenant(tenant).filter(action="apikey.update").get()
    assert event.before["name"] == "test key" and event.after["name"] == "renamed"
    bad = api.patch(f"/api/v1/keys/{issued.key.pk}", {"scopes": ["admin"]}, format="json")
    assert bad.status_code == 200 and bad.json()["scopes"] == issued.key.scopes  # ignored field
