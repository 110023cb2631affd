"""The admin console in headless Chromium (Debian's /usr/bin/chromium, driven by Playwright)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not shutil.which(CHROMIUM), reason="Debian chromium is not installed"),
]


@pytest.fixture
def page():
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls the live server
    # makes happen in its own threads, but fixtures touch the database from here.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--disable-sync",
            ],
        )
        yield browser.new_page()
        browser.close()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


def sign_in(page, live_server, email):
    page.goto(f"{live_server.url}/console/login/")
    page.fill("input[name=username]", email)
    page.fill("input[name=password]", "pw-12345678")
    page.click("button[type=submit]")


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
    page.click(f"text={tenant.name}")
    assert key.key.masked in page.inner_text("table")  # keys are listed masked
    assert key.token not in page.content()

    page.click("text=Audit log")
    assert "auth.login" in page.inner_text("table")
    assert "apikey.create" in page.inner_text("table")

    page.click("text=Trace a clip")
    page.set_input_files("input[name=file]", str(clip))
    page.click("button[type=submit]")
    page.wait_for_selector("#result")
    verdict = page.inner_text("#verdict")
    result = page.inner_text("#result")
    Path(tmp_path / "console.png").write_bytes(page.screenshot(full_page=True))
    assert verdict == "watermarked", result
    assert response["X-Request-Id"] in result and "stock-joe" in result
