"""Console pages without a browser: access rules and sign-in throttling."""

import re
import time

import pytest

pytestmark = pytest.mark.django_db


def _start_of_a_fresh_window(value: str, period: int = 60, needed_s: int = 20) -> None:
    """django-ratelimit counts in fixed windows (offset per key): start the burst with time
    to spare, so a busy machine cannot straddle two windows."""
    from django_ratelimit.core import _get_window

    remaining = _get_window(value, period) - time.time()
    if remaining < needed_s:
        time.sleep(remaining + 0.5)


def test_sign_in_is_rate_limited_per_account(client, tenant, make_member, settings):
    make_member(tenant, "owner", email="target@example.com")
    # A fast hasher keeps the burst of 12 failed sign-ins inside one window on a loaded
    # machine (PBKDF2 takes about a second per guess there).
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    _start_of_a_fresh_window("target@example.com")
    statuses = [
        client.post(
            "/console/login/",
            {"username": "target@example.com", "password": "guess"},
            REMOTE_ADDR=f"10.0.0.{n}",
        ).status_code
        for n in range(12)
    ]
    assert statuses[:10] == [200] * 10 and statuses[10:] == [429, 429]
    limited = client.post(
        "/console/login/", {"username": "target@example.com", "password": "pw-12345678"}
    )
    assert limited.status_code == 429 and int(limited["Retry-After"]) >= 1


def test_pages_are_scoped_to_membership_and_role(client, tenant, other_tenant, make_member):
    developer = make_member(tenant, "developer")
    client.force_login(developer)
    assert client.get(f"/console/{tenant.slug}/").status_code == 200
    assert client.get(f"/console/{other_tenant.slug}/").status_code == 404
    assert client.get(f"/console/{tenant.slug}/audit/").status_code == 404  # not an auditor
    assert client.get(f"/console/{tenant.slug}/watermark/").status_code == 404
    client.logout()
    assert client.get(f"/console/{tenant.slug}/").status_code == 302  # to sign-in


def test_django_admin_is_read_only(admin_client, tenant, make_key, make_member):
    key = make_key(tenant).key
    make_member(tenant, "auditor")
    assert admin_client.get("/django-admin/tenancy/tenant/").status_code == 200
    assert admin_client.get("/django-admin/tenancy/tenant/add/").status_code == 403
    # Tenant-owned models list every tenant's rows for operators (the scoped default
    # manager would refuse without a tenant).
    for path in (
        "tenancy/apikey/",
        f"tenancy/apikey/{key.pk}/change/",
        "tenancy/membership/",
        "tenancy/usagerecord/",
        "audit/auditevent/",
        "synthesis/synthesisrequest/",
        "voices/voice/",
    ):
        response = admin_client.get(f"/django-admin/{path}")
        assert response.status_code == 200, path


def test_console_pages_send_security_headers(client, tenant, make_member):
    client.force_login(make_member(tenant, "owner"))
    response = client.get(f"/console/{tenant.slug}/")
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["Cache-Control"] == "private, no-store"
    assert "Content-Security-Policy" not in client.get("/api/v1/tenants/acme/tenant")


def test_login_form_is_csrf_protected(tenant, make_member):
    from django.test import Client

    make_member(tenant, "owner", email="csrf@example.com")
    strict = Client(enforce_csrf_checks=True)
    response = strict.post("/console/login/", {"username": "csrf@example.com", "password": "x"})
    assert response.status_code == 403 and b"expired" in response.content


def unmasked(response) -> str:
    return re.sub(r'"X-CSRFToken": "[^"]+"', "", response.content.decode())


def test_a_member_of_another_tenant_sees_none_of_its_pages(
    client, tenant, other_tenant, make_member
):
    from django.urls import reverse

    from frontend.console import NAV

    client.force_login(make_member(other_tenant, "owner"))
    for item in NAV:
        mine = client.get(reverse(item.url_name, args=[other_tenant.slug]))
        theirs = client.get(reverse(item.url_name, args=[tenant.slug]))
        unknown = client.get(reverse(item.url_name, args=["no-such-tenant"]))
        assert mine.status_code == 200, item.url_name
        assert theirs.status_code == unknown.status_code == 404, item.url_name
        # A foreign tenant reads exactly as an unknown one (but for the per-render CSRF mask).
        assert unmasked(theirs) == unmasked(unknown)


def test_tenant_switcher_keeps_the_section_and_refuses_foreign_tenants(
    client, make_tenant, make_member
):
    from tenancy.services import tenants
    from tenancy.services.access import Access
    from tests.fixtures import test_context

    first, second, foreign = make_tenant("north"), make_tenant("south"), make_tenant("west")
    user = make_member(first, "owner")
    tenants.add_member(Access.operator(second), user, "auditor", context=test_context())
    client.force_login(user)
    assert client.get("/console/").status_code == 200  # two tenants: the picker
    page = client.get(f"/console/{first.slug}/usage/")
    assert b'id="tenant-switcher"' in page.content
    switched = client.post(
        "/console/switch/", {"tenant": second.slug, "next": f"/console/{first.slug}/usage/"}
    )
    assert switched.status_code == 302 and switched["Location"] == f"/console/{second.slug}/usage/"
    refused = client.post("/console/switch/", {"tenant": foreign.slug, "next": "/console/"})
    assert refused["Location"] == "/console/"
    offsite = client.post("/console/switch/", {"tenant": second.slug, "next": "https://evil.test/"})
    assert offsite["Location"] == f"/console/{second.slug}/"
