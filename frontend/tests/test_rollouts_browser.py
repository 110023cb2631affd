"""The rollouts section in headless Chromium: percentages, interval charts, evidence, a pause."""

from __future__ import annotations

import pytest

from frontend.tests.conftest import assert_accessible, needs_chromium, screenshot, sign_in
from frontend.tests.rollout_data import guardrail_look, platform_rollout, voice_rollout

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), needs_chromium]


def test_owner_follows_and_pauses_its_voice_rollout(
    page, live_server, tenant, make_member, make_job
):
    stock = platform_rollout()
    voice, stable, candidate, own = voice_rollout(tenant, make_job, requests=40, samples=12)
    guardrail_look(own, tenant)
    make_member(tenant, "owner", email="owner@example.com")

    sign_in(page, live_server, "owner@example.com")
    page.click("nav >> text=Rollouts")
    page.wait_for_selector("h1:has-text('Rollouts')")
    live = page.inner_text("main .rollout-list")
    assert "25 %" in live and "Step 2 of 4" in live  # the platform's stock rollout
    assert "20 %" in live and "Step 1 of 3" in live  # the tenant's own voice
    widths = page.eval_on_selector_all(".progress > span", "bars => bars.map(b => b.style.width)")
    assert sorted(widths) == ["20%", "25%"]
    assert_accessible(page)
    screenshot(page, "rollouts")

    page.click(f"main a[href$='/rollouts/{own.pk}/']")
    page.wait_for_selector("h2:has-text('Candidate beside stable')")
    page.wait_for_function(
        "() => [...document.querySelectorAll('canvas[data-chart]')]"
        ".every(c => window.Chart && Chart.getChart(c))"
    )
    drawn = page.evaluate(
        "() => [...document.querySelectorAll('canvas[data-chart]')].map(c => {"
        " const chart = Chart.getChart(c);"
        " return {id: c.id, arms: chart.data.datasets.map(d => d.label),"
        " bars: chart.data.datasets.map(d => d.data[0])}; })"
    )
    ids = {d["id"] for d in drawn}
    assert {"metric-error-rate", "metric-latency-per-char-ms-p50", "metric-mos"} <= ids
    for chart in drawn:
        assert chart["arms"] == ["Candidate", "Stable"]
        bounds = [b for b in chart["bars"] if b is not None]
        assert bounds and all(low <= high for low, high in bounds), chart
    assert "samples" in page.inner_text("main .metrics-table thead").lower()

    evidence = page.locator("main details.evidence").first
    evidence.locator("summary").click()
    assert f"tenant:{tenant.pk}" in evidence.inner_text()
    assert "stranger-verdict" not in page.content()
    assert_accessible(page)
    screenshot(page, "rollout-detail")

    before = page.locator("#timeline tr").count()
    page.fill("#id_pause-reason", "listening test with the brand team")
    page.click("main button:has-text('Pause')")
    dialog = page.locator("#confirm-dialog")
    assert "Pause this rollout?" in dialog.inner_text()
    dialog.locator("button[value=ok]").click()
    page.wait_for_selector("#rollout-state:has-text('Paused')")
    assert "Paused: nobody flips" in page.inner_text("main .messages")
    assert page.locator("#timeline tr").count() == before + 1
    newest = page.inner_text("#timeline tr:first-child")
    assert "Pause" in newest and "listening test with the brand team" in newest
    assert page.locator("main button:has-text('Resume')").count() == 1
    own.refresh_from_db()
    assert own.state == "paused"

    # The platform's rollout: readable, but its controls are the operator's.
    page.goto(f"{live_server.url}/console/{tenant.slug}/rollouts/{stock.pk}/")
    assert "Managed by the platform operator" in page.inner_text("main")
    assert page.locator("main button:has-text('Pause')").count() == 0
