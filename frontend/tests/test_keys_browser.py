"""API keys, members and settings in headless Chromium: the paths an owner and an auditor
take, with the real API behind the keys and a fresh browser for the invitee."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from frontend.tests.conftest import assert_accessible, needs_chromium, screenshot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), needs_chromium]


def call_api(live_server, token: str) -> int:
    request = urllib.request.Request(
        f"{live_server.url}/api/v1/tenant", headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            assert json.load(response)["slug"] == "acme"
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def realistic_data(tenant, make_member, make_key):
    from tenancy.services import tenants
    from tenancy.services.access import Access

    make_key(tenant, scopes=["synthesize"], name="ios app (production)")
    make_key(
        tenant,
        scopes=["synthesize", "voices:read"],
        name="web player",
        allowed_ips=["203.0.113.0/24"],
        monthly_character_limit=250_000,
    )
    make_key(tenant, scopes=["usage:read"], name="billing export")
    make_member(tenant, "admin", email="ana.admin@example.com")
    make_member(tenant, "brand_manager", email="bruno.brand@example.com")
    make_member(tenant, "developer", email="dev.dana@example.com")
    tenants.invite_member(Access.operator(tenant), "pending.pat@example.com", "auditor")


def test_owner_manages_keys_members_and_settings(page, live_server, tenant, make_member, make_key):
    realistic_data(tenant, make_member, make_key)
    make_member(tenant, "owner", email="owner@example.com")
    sign_in(page, live_server, "owner@example.com")
    base = f"{live_server.url}/console/{tenant.slug}"

    # --- keys: create, see the secret once, use it, rotate, revoke -----------------------
    page.goto(f"{base}/keys/")
    assert "web player" in page.inner_text("main table")
    assert_accessible(page)
    screenshot(page, "keys")

    page.click("main a:has-text('Create key')")
    page.fill("#id_name", "browser app")
    page.check("input[name=scopes][value='synthesize']")
    page.check("input[name=scopes][value='usage:read']")
    page.fill("#id_allowed_ips", "127.0.0.1\n10.0.0.0/8")
    page.click("main button:has-text('Create key')")
    page.wait_for_selector("#new-secret")
    token = page.inner_text("#new-secret").strip()
    assert token.startswith("tb_live_") and "you will not see it again" in page.inner_text("main")
    page.click("main button[data-copy='#new-secret']")
    page.wait_for_selector("main button[data-copy='#new-secret']:has-text('Copied')")
    assert_accessible(page)
    screenshot(page, "keys-created")
    assert page.url == f"{base}/keys/"  # the history entry points at the list
    page.reload()
    assert token not in page.content() and "browser app" in page.inner_text("main table")
    assert call_api(live_server, token) == 200

    prefix = token.rsplit("_", 1)[0]
    page.click(f"main tr:has-text('{prefix}') >> text=Rotate")
    page.check("input[name=grace][value='3600']")
    page.click("main button:has-text('Rotate key')")
    page.wait_for_selector("#new-secret")
    rotated = page.inner_text("#new-secret").strip()
    assert rotated != token and "keeps working until" in page.inner_text("main")
    assert call_api(live_server, rotated) == 200
    assert call_api(live_server, token) == 200  # the grace hour

    page.goto(f"{base}/keys/")
    new_prefix = rotated.rsplit("_", 1)[0]
    page.click(f"main tr:has-text('{new_prefix}') button:has-text('Revoke')")
    page.click("dialog[open] [data-ok]")
    page.wait_for_selector("main .flash:has-text('Revoked')")
    assert call_api(live_server, rotated) == 401

    # --- members: invite; the invitee accepts in a fresh browser --------------------------
    page.click("nav >> text=Members")
    assert "pending.pat@example.com" in page.inner_text("main")
    assert_accessible(page)
    screenshot(page, "members")
    page.fill("#id_email", "newcomer@example.com")
    page.select_option("#id_role", "developer")
    page.click("main button:has-text('Send invitation')")
    page.wait_for_selector("#accept-url")
    link = page.inner_text("#accept-url").strip()
    assert "/console/invite/" in link
    assert_accessible(page)
    page.reload()
    assert link not in page.content()

    invitee_context = page.context.browser.new_context()
    invitee = invitee_context.new_page()
    invitee.goto(link)
    assert "Join" in invitee.inner_text("h1")
    assert_accessible(invitee)
    invitee.fill("#id_password", "a-long-unusual-passphrase")
    invitee.fill("#id_password_again", "a-long-unusual-passphrase")
    invitee.click("main button[type=submit]")
    invitee.wait_for_url(f"{base}/")
    assert "newcomer@example.com" in invitee.inner_text(".topbar")
    invitee.goto(link)
    assert "does not work" in invitee.inner_text("main")
    invitee_context.close()

    page.reload()
    assert "newcomer@example.com" in page.inner_text("main table")

    # --- settings -------------------------------------------------------------------------
    page.click("nav >> text=Settings")
    page.fill("#id_legal_name", "Acme Voice Holdings Ltd.")
    page.click("main button:has-text('Save')")
    page.wait_for_selector("main .flash:has-text('Saved')")
    assert "Acme Voice Holdings Ltd." in page.inner_text("main")
    assert_accessible(page)
    screenshot(page, "settings")


def test_auditor_reads_keys_and_members_but_changes_nothing(
    page, live_server, tenant, make_member, make_key
):
    realistic_data(tenant, make_member, make_key)
    key = make_key(tenant, scopes=["synthesize"], name="target").key
    make_member(tenant, "auditor", email="auditor@example.com")
    sign_in(page, live_server, "auditor@example.com")
    base = f"{live_server.url}/console/{tenant.slug}"

    page.goto(f"{base}/keys/")
    assert key.masked in page.inner_text("main table")
    for control in ("Create key", "Rotate", "Revoke", "Edit"):
        assert page.locator(f"main :text-is('{control}')").count() == 0, control
    page.goto(f"{base}/members/")
    assert "dev.dana@example.com" in page.inner_text("main table")
    assert page.locator("main form").count() == 0
    assert page.locator("main button:has-text('Send invitation')").count() == 0

    csrf = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    headers = {"X-CSRFToken": csrf, "Referer": f"{base}/keys/"}
    for path, form in [
        ("/keys/new/", {"name": "sneaky", "scopes": "synthesize"}),
        (f"/keys/{key.pk}/revoke/", {}),
        (f"/keys/{key.pk}/rotate/", {"grace": "0"}),
        ("/members/invite/", {"email": "x@example.com", "role": "auditor"}),
        ("/settings/profile/", {"name": "Hijacked"}),
    ]:
        response = page.request.post(f"{base}{path}", form=form, headers=headers)
        assert response.status == 404, path
    key.refresh_from_db()
    assert key.status == "active"
