"""A new brand manager enrols a voice in headless Chromium: the talent, the training recordings,
the consent statement read into the browser's microphone (a synthetic talent's WAV as the fake
capture device) and recorded with MediaRecorder, verification and a fine-tune on a real worker,
the evaluation, then the playground beside the stock voice."""

from __future__ import annotations

import time

import numpy as np
import pytest

from consent.models import ConsentRecord
from frontend.tests.conftest import assert_accessible, needs_chromium, screenshot, sign_in
from speech.testing import talents as T
from voices.models import Voice
from voices.tests.journey import COMPANY, DEV, SR, TALENT_NAME, dataset_zip, take

pytestmark = [
    pytest.mark.browser,
    pytest.mark.worker,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    needs_chromium,
]

TRAIN = T.TRAIN_SENTENCES[:12]  # as the API journey: enough for the fine-tune's gates
EMAIL = "brand@example.com"
LONG = 240_000  # ms: checks, verification and the fine-tune run on a shared 2-core machine


def test_brand_manager_enrols_a_voice_and_hears_it(
    page, launch_browser, live_server, tenant, make_member, celery_worker, tmp_path
):
    from speech import audio

    tenant.legal_name = COMPANY
    tenant.save(update_fields=["legal_name"])
    make_member(tenant, "brand_manager", email=EMAIL)

    # --- the list, empty: the way in --------------------------------------------------------------
    sign_in(page, live_server, EMAIL)
    page.click("nav >> text=Voices")
    assert "Enrol your first brand voice" in page.inner_text("main")
    assert "stock-joe" in page.inner_text("main table")
    assert_accessible(page)
    page.click("main a.button:has-text('Enrol your first brand voice')")

    # --- 1. the talent and the voice --------------------------------------------------------------
    assert page.locator(".steps [aria-current=step]").inner_text() == "Talent"
    page.fill("#id_talent_name", TALENT_NAME)
    page.fill("#id_talent_email", "dana@example.com")
    page.fill("#id_name", "Dana")
    page.fill("#id_slug", "dana")
    page.click("main button:has-text('Create the voice')")
    page.wait_for_url("**/recordings/")
    voice = Voice.objects.for_tenant(tenant).get(slug="dana")

    # --- 2. training recordings: a zip, checked on the worker, reported per file ------------------
    archive = tmp_path / "dataset.zip"
    archive.write_bytes(dataset_zip(DEV, TRAIN))
    page.set_input_files("#id_files", str(archive))
    page.click("main button:has-text('Upload')")
    page.wait_for_function(
        "n => document.querySelector('#accepted-count')?.textContent.trim() === String(n)",
        arg=len(TRAIN),
        timeout=LONG,
    )
    report = page.inner_text("#dataset-report")
    assert "clips/00.wav" in report and "Accepted" in report
    screenshot(page, "voice-training")

    # --- 3. the statement -------------------------------------------------------------------------
    page.click("main a:has-text('Next: consent statement')")
    page.click("main button:has-text('Request the statement')")
    page.wait_for_selector("blockquote.statement mark.challenge")
    consent = ConsentRecord.objects.for_tenant(tenant).get(voice=voice)
    assert page.inner_text("mark.challenge") == consent.challenge
    assert page.get_attribute("time[data-countdown]", "data-countdown")
    assert_accessible(page)
    screenshot(page, "voice-consent-statement")

    # The talent reads that exact statement (challenge included) into a second browser's mic.
    take_samples = take(DEV, consent.statement)
    # At a speaking level (peak -6 dBFS): Chromium's capture and Opus overshoot a take that
    # peaks at full scale, and the consent check rightly calls that clipped.
    take_samples = take_samples * (0.5 / max(float(np.max(np.abs(take_samples))), 1e-6))
    reading = tmp_path / "statement.wav"
    reading.write_bytes(audio.encode(take_samples, SR, "wav"))
    seconds = len(take_samples) / SR
    mic_browser = launch_browser(fake_audio=f"{reading}%noloop")
    studio = mic_browser.new_context(viewport={"width": 1360, "height": 900}).new_page()
    studio.set_default_timeout(20_000)
    sign_in(studio, live_server, EMAIL)

    # --- 4. recording: the wizard reopens where the enrolment stands ------------------------------
    studio.click("nav >> text=Voices")
    studio.click("main table a:has-text('Dana')")
    studio.wait_for_url("**/recording/")
    assert studio.locator(".steps [aria-current=step]").inner_text() == "Consent recording"
    studio.wait_for_selector("[data-recorder]:not([hidden])")
    assert_accessible(studio)
    studio.click("main button:has-text('Start recording')")
    studio.wait_for_selector("[data-recorder][data-state=recording]")
    peak, deadline = 0.0, time.monotonic() + seconds + 0.8
    while time.monotonic() < deadline:
        peak = max(peak, studio.evaluate("document.querySelector('[data-record-level]').value"))
        time.sleep(0.2)
    studio.click("main button:has-text('Stop')")
    studio.wait_for_selector("[data-recorder][data-state=recorded]")
    assert peak > 0.2, peak  # the level meter moved with the voice
    assert studio.evaluate("document.querySelector('#id_file').files.length") == 1
    assert studio.evaluate("document.querySelector('[data-record-preview]').src").startswith(
        "blob:"
    )
    screenshot(studio, "voice-recording")
    studio.click("main button:has-text('Submit the recording')")

    # --- 5. verification (polled by htmx) ---------------------------------------------------------
    studio.wait_for_url("**/verification/")
    studio.wait_for_selector("#consent-status.verified, #consent-status.rejected", timeout=LONG)
    result = studio.inner_text("#verification")
    assert "Verified" in studio.inner_text("#consent-status"), result
    assert "Pass" in result

    # --- 6. the fine-tune, its progress moving ----------------------------------------------------
    page.goto(f"{live_server.url}/console/{tenant.slug}/voices/{voice.pk}/")
    page.wait_for_url("**/fine-tune/")  # resumes at the next step
    page.fill("#id_steps", "300")
    page.click("main button:has-text('Start the fine-tune')")
    page.wait_for_selector("#fine-tune-status.queued, #fine-tune-status.running")
    assert_accessible(page)
    seen = set()
    deadline = time.monotonic() + LONG / 1000
    while time.monotonic() < deadline:
        status = page.inner_text("#fine-tune-status")
        seen.add(page.get_attribute("#fine-tune-bar", "value"))
        if status not in ("Queued", "Running"):
            break
        time.sleep(1)
    assert page.inner_text("#fine-tune-status") == "Succeeded", page.inner_text("#fine-tune")
    assert len(seen) > 2, seen  # the bar moved between polls
    assert page.get_attribute("#fine-tune-bar", "value") == "100.0"

    # --- 7. evaluation ----------------------------------------------------------------------------
    page.click("main a:has-text('Next: evaluation')")
    table = page.inner_text("#evaluation").lower()
    assert "speaker similarity" in table and "stock voice" in table
    assert page.inner_text("#version-status") == "Ready", page.inner_text("main")

    # --- 8. the playground, then the stock voice beside it ----------------------------------------
    page.click("main a:has-text('try it in the playground')")
    page.fill("#id_text", "Welcome to Acme. How can I help you today?")
    page.select_option("#id_emotion", "happy")
    page.fill("#id_speed", "1.1")
    page.click("main button:has-text('Synthesize')")
    page.wait_for_selector("#clip-audio")
    assert _duration(page, "#clip-audio") > 1.0
    page.click("main button:has-text('Compare with the stock voice')")
    page.wait_for_selector("#compare-audio")
    assert _duration(page, "#clip-audio") > 1.0 and _duration(page, "#compare-audio") > 1.0
    assert_accessible(page)
    screenshot(page, "voice-playground")
    # What the console served is the stored clip, watermarked like every clip leaving Timbre.
    clip = page.evaluate(
        "async s => { const r = await fetch(document.querySelector(s).src);"
        " return Array.from(new Uint8Array(await r.arrayBuffer())); }",
        "#clip-audio",
    )
    samples, sr = audio.decode(bytes(clip))
    from synthesis.watermarking import detect_samples

    assert detect_samples(samples, sr)[1].verdict == "watermarked"

    page.click("nav >> text=Voices")
    assert "Ready" in page.inner_text("main table")
    screenshot(page, "voices")


def _duration(page, selector: str) -> float:
    """The player's duration once its metadata has loaded from the console's clip URL."""
    page.wait_for_function(
        "s => { const a = document.querySelector(s); return a && a.readyState >= 1 && "
        "isFinite(a.duration) && a.duration > 0; }",
        arg=selector,
        timeout=30_000,
    )
    return page.evaluate("s => document.querySelector(s).duration", selector)
