"""The admin console in headless Chromium (Debian's /usr/bin/chromium, driven by Playwright)."""

from __future__ import annotations

import pytest

from frontend.tests.conftest import needs_chromium, screenshot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), needs_chromium]


def test_wrong_password_is_refused(page, live_server, tenant, make_member):
    make_member(tenant, "owner", email="owner@example.com")
    page.goto(f"{live_server.url}/console/login/")
    page.fill("input[name=username]", "owner@example.com")
    page.fill("input[name=password]", "wrong-password")
    page.click("button[type=submit]")
    assert "incorrect" in page.inner_text("[role=alert]")


# The auditor's trace journey lives in test_compliance_browser.py.


def test_pages_fit_a_phone_screen(launch_browser, live_server, tenant, make_member, make_key):
    """The sidebar becomes a strip and wide tables scroll inside their card: no page is wider
    than a 390 px screen."""
    make_key(tenant, name="mobile app")
    make_member(tenant, "owner", email="phone@example.com")
    context = launch_browser().new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    sign_in(page, live_server, "phone@example.com")
    for section in ("", "keys/", "usage/", "audit/", "members/"):
        page.goto(f"{live_server.url}/console/{tenant.slug}/{section}")
        overflow = page.evaluate("() => document.documentElement.scrollWidth - innerWidth")
        assert overflow <= 1, (section, overflow)
    page.goto(f"{live_server.url}/console/{tenant.slug}/")
    screenshot(page, "dashboard-phone")
    context.close()
