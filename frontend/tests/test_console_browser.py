"""The admin console in headless Chromium (Debian's /usr/bin/chromium, driven by Playwright)."""

from __future__ import annotations

from pathlib import Path

import pytest

from frontend.tests.conftest import assert_accessible, needs_chromium, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), needs_chromium]


def test_wrong_password_is_refused(page, live_server, tenant, make_member):
    make_member(tenant, "owner", email="owner@example.com")
    page.goto(f"{live_server.url}/console/login/")
    page.fill("input[name=username]", "owner@example.com")
    page.fill("input[name=password]", "wrong-password")
    page.click("button[type=submit]")
    assert "incorrect" in page.inner_text("[role=alert]")


def test_auditor_signs_in_reads_audit_and_traces_a_clip(
    page, live_server, tenant, make_member, make_key, client_for, celery_worker, tmp_path
):
    key = make_key(tenant, name="mobile app")
    response = client_for(key.token).post(
        "/api/v1/synthesize",
        {
            "voice": "stock-joe",
            "text": "This clip will leak onto the internet tomorrow.",
            "format": "mp3",
        },
        format="json",
    )
    assert response.status_code == 200
    clip = tmp_path / "found-online.mp3"
    clip.write_bytes(response.content)
    make_member(tenant, "auditor", email="auditor@example.com")

    sign_in(page, live_server, "auditor@example.com")
    assert page.url.endswith(f"/console/{tenant.slug}/")  # one tenant: straight to it
    assert key.token not in page.content()

    page.click("nav >> text=Audit log")
    assert "auth.login" in page.inner_text("table")
    assert "apikey.create" in page.inner_text("table")

    page.click("nav >> text=Trace a clip")
    assert_accessible(page)
    page.set_input_files("input[name=file]", str(clip))
    page.click("main button[type=submit]")
    page.wait_for_selector("#result")
    verdict = page.inner_text("#verdict")
    result = page.inner_text("#result")
    Path(tmp_path / "console.png").write_bytes(page.screenshot(full_page=True))
    assert verdict == "watermarked", result
    assert response["X-Request-Id"] in result and "stock-joe" in result
