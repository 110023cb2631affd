"""The dashboard and usage pages in headless Chromium: charts drawn, filters swapped in by htmx
without a reload, the CSV downloaded; accessibility checks and screenshots with a month of data."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from frontend.tests import dashboard_data as data
from frontend.tests.conftest import assert_accessible, needs_chromium, screenshot, sign_in
from tenancy.services import quotas
from voices.models import FineTuneJob

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), needs_chromium]

CHART_DRAWN = "(sel) => !!(window.Chart && Chart.getChart(document.querySelector(sel)))"


def realistic_month(tenant, make_key, make_job):
    """A month of varied usage across three keys and three voices, recent jobs, fine-tunes and
    a couple of things needing attention."""
    keys = [make_key(tenant, name=name).key for name in ("Website widget", "Mobile app", "IVR")]
    aurora = data.custom_voice(tenant, "Aurora (brand)", slug="aurora")
    max_voice = data.custom_voice(tenant, "Max (support)", slug="max")
    voices = ["stock-joe", "aurora", "max"]
    month_start = timezone.localdate().replace(day=1)
    spent = [0, 0, 0]
    for day in range(30):
        weekday = (timezone.localdate() - timedelta(days=day)).weekday()
        for n, key in enumerate(keys):
            characters = (1800 + 700 * n + 37 * ((day * 7 + n * 13) % 23)) // (
                2 if weekday >= 5 else 1
            )
            count = 3 + (day + n) % 4
            data.use(
                tenant,
                key=key,
                voice=voices[(day + n) % 3],
                characters=characters // count,
                count=count,
                days_ago=day,
            )
            if (timezone.localdate() - timedelta(days=day)) >= month_start:
                spent[n] += characters // count * count
        if day % 6 == 0:
            data.use(tenant, key=keys[day % 3], voice="max", status="failed", days_ago=day)
    for n, key in enumerate(keys):
        if spent[n]:
            data.spend(tenant, spent[n], key=key)
    # What the voices hold against the plan (the rows above bypass the voice services).
    quotas.take(tenant, quotas.VOICES, 2)
    quotas.take(tenant, quotas.FINE_TUNES, 1)
    quotas.take(tenant, quotas.STORAGE_BYTES, 612 << 20)
    for n in range(10):
        voice = (aurora, max_voice, None)[n % 3]
        fields = {"voice": voice, "voice_slug": voice.slug} if voice else {}
        failed = n in (2, 7)
        make_job(
            tenant,
            api_key=keys[n % 3],
            characters=120 + 45 * n,
            format=("mp3", "wav", "opus")[n % 3],
            status="failed" if failed else "succeeded",
            error_code="synthesis_timeout" if failed else "",
            **fields,
        )
    FineTuneJob.objects.for_tenant(tenant).create(
        tenant=tenant, voice=max_voice, status="running", percent=64, phase="training"
    )
    FineTuneJob.objects.for_tenant(tenant).create(
        tenant=tenant, voice=aurora, status="succeeded", percent=100
    )
    data.consent(tenant, "Maya Chen", voice=aurora, valid_for=timedelta(days=18))
    data.held_rollout(tenant, max_voice)
    return keys


def test_brand_manager_reads_the_dashboard_and_filters_usage(
    page, live_server, make_tenant, make_member, make_key, make_job
):
    tenant = make_tenant("acme", monthly_characters=100_000)
    keys = realistic_month(tenant, make_key, make_job)
    make_member(tenant, "brand_manager", email="brand@example.com")
    sign_in(page, live_server, "brand@example.com")
    assert page.url.endswith(f"/console/{tenant.slug}/")

    # The dashboard: every chart drawn, alerts with what to do.
    for canvas in ("#quota-gauge", "#daily-usage", "#usage-by-voice", "#usage-by-key"):
        page.wait_for_function(CHART_DRAWN, arg=canvas)
    assert page.evaluate("() => !!Chart.getChart(document.querySelector('canvas'))")
    alerts = page.inner_text("#alerts")
    assert "Consent of Maya Chen ends in" in alerts and "is holding at 5 %" in alerts
    assert "2 synthesis requests failed in the last 24 hours" in alerts
    assert "Create API key" not in page.inner_text("main")  # no keys:write
    assert_accessible(page)
    screenshot(page, "dashboard")

    # Usage: this month by day; then filters swap the report in place.
    page.click("nav >> text=Usage")
    page.wait_for_function(CHART_DRAWN, arg="#usage-chart")
    assert page.locator("#id_start").evaluate("el => el.value").endswith("-01")  # this month
    assert_accessible(page)
    # The last 30 days for the picture (early in a month, "this month" is a day or two).
    start = (timezone.localdate() - timedelta(days=29)).isoformat()
    page.goto(f"{live_server.url}/console/{tenant.slug}/usage/?start={start}")
    page.wait_for_function(CHART_DRAWN, arg="#usage-chart")
    screenshot(page, "usage")
    page.evaluate("() => { window.stillHere = true; }")
    page.select_option("#id_group_by", "voice")
    page.wait_for_selector("#usage-table th:has-text('Voice')")
    page.wait_for_function(CHART_DRAWN, arg="#usage-chart")
    assert "Aurora (brand)" in page.inner_text("#usage-table")
    page.select_option("#id_api_key", str(keys[1].pk))
    page.wait_for_url("**api_key=*")
    page.wait_for_load_state("networkidle")
    assert page.evaluate("() => window.stillHere === true")  # no full reload
    assert "group_by=voice" in page.url
    assert page.locator("#id_group_by").evaluate("el => el.value") == "voice"
    assert_accessible(page)

    with page.expect_download() as download:
        page.click("#usage-csv")
    lines = open(download.value.path()).read().splitlines()
    assert lines[0] == "voice,requests,failed,characters,audio_seconds"
    assert len(lines) > 1

    # A reversed range: the 400 fragment is swapped in with the message next to the field.
    page.fill("#id_end", "2020-01-01")
    page.wait_for_selector("#id_end_error")
    assert "before the start" in page.inner_text("#id_end_error")
    assert page.evaluate("() => window.stillHere === true")
    assert_accessible(page)
