"""The admin console in headless Chromium (Debian's /usr/bin/chromium, driven by Playwright)."""

from __future__ import annotations

import pytest

from frontend.tests.conftest import needs_chromium

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), needs_chromium]


def test_wrong_password_is_refused(page, live_server, tenant, make_member):
    make_member(tenant, "owner", email="owner@example.com")
    page.goto(f"{live_server.url}/console/login/")
    page.fill("input[name=username]", "owner@example.com")
    page.fill("input[name=password]", "wrong-password")
    page.click("button[type=submit]")
    assert "incorrect" in page.inner_text("[role=alert]")


# The auditor's trace journey lives in test_compliance_browser.py.
