"""Consent, audit log and clip tracing in headless Chromium: an auditor reads and exports, a
brand manager revokes, and a leaked clip is traced back to its request."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from core.storage import get_storage
from frontend.tests.compliance import consent_with_evidence
from frontend.tests.conftest import assert_accessible, needs_chromium, screenshot, sign_in
from voices.models import FineTuneJob, VoiceVersion
from voices.tests.journey import DEV, wav

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), needs_chromium]


def _audio_loaded(page) -> float:
    page.wait_for_function(
        "() => { const a = document.querySelector('#statement-audio');"
        " return a && a.readyState >= 1 && a.duration > 0; }"
    )
    return page.evaluate("() => document.querySelector('#statement-audio').duration")


def test_auditor_reads_and_exports_then_a_brand_manager_revokes(
    page, live_server, tenant, make_member, make_key, tmp_path
):
    tenant.legal_name = "Acme Limited"
    tenant.save(update_fields=["legal_name"])
    consent = consent_with_evidence(tenant, recording=None)
    # The talent's voice, as the consent recording would be: speech, not a test tone.
    get_storage().put(consent.recording_key, wav(DEV, consent.statement))
    consent_with_evidence(tenant, slug="sam", name="Sam Ortega")
    FineTuneJob.objects.for_tenant(tenant).create(
        voice_id=consent.voice_id, status=FineTuneJob.Status.RUNNING
    )
    artefact = f"tenants/{tenant.pk}/voices/{consent.voice_id}/versions/v1.pt"
    get_storage().put(artefact, b"adapter")
    VoiceVersion.objects.for_tenant(tenant).create(
        voice_id=consent.voice_id, number=1, status=VoiceVersion.Status.READY,
        artefact_key=artefact, artefact_bytes=7,
    )  # fmt: skip
    make_key(tenant, name="mobile app")
    make_member(tenant, "auditor", email="auditor@example.com")
    make_member(tenant, "brand_manager", email="brand@example.com")

    # --- the auditor: audit log -------------------------------------------------------------
    sign_in(page, live_server, "auditor@example.com")
    page.click("nav >> text=Audit log")
    page.wait_for_selector("#audit-events")
    assert_accessible(page)
    screenshot(page, "audit")
    page.select_option("#id_action", "consent.verify")
    page.wait_for_url("**action=consent.verify**")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#audit-events tr.event td:nth-child(4) code')]"
        ".every(c => c.textContent === 'consent.verify')"
    )
    rows = page.locator("#audit-events tr.event")
    assert rows.count() == 2
    page.locator("#audit-events details summary").first.click()
    diff = page.locator("#audit-events details[open]").first
    assert "status" in diff.inner_text() and "added" in diff.inner_text()
    page.click("#verify-chain")
    page.wait_for_selector("#chain-result")
    assert "Intact" in page.inner_text("#chain-result")
    with page.expect_download() as download:
        page.click("#export-csv")
    exported = Path(download.value.path()).read_text()
    actions = [row["action"] for row in csv.DictReader(io.StringIO(exported))]
    assert actions == ["consent.verify", "consent.verify"]

    # --- the auditor: consent -----------------------------------------------------------------
    page.click("nav >> text=Consent")
    page.wait_for_selector("main table")
    assert_accessible(page)
    screenshot(page, "consent")
    page.click("main a:has-text('Dana Fischer')")
    page.wait_for_selector("#statement-audio")
    assert "Revoke consent" not in page.inner_text("main")  # an auditor changes nothing
    assert _audio_loaded(page) > 1.0
    page.evaluate(
        "() => { const a = document.querySelector('#statement-audio'); a.muted = true;"
        " return a.play(); }"
    )
    page.wait_for_function("() => document.querySelector('#statement-audio').currentTime > 0")
    assert_accessible(page)
    screenshot(page, "consent-detail")
    with page.expect_download() as download:
        page.click("#evidence-export")
    evidence = json.loads(Path(download.value.path()).read_text())
    assert evidence["consent"]["id"] == str(consent.pk) and evidence["evidence"][0]["passed"]

    # --- the brand manager revokes -------------------------------------------------------------
    brand = page.context.browser.new_context(viewport={"width": 1360, "height": 900})
    manager = brand.new_page()
    manager.set_default_timeout(20_000)
    sign_in(manager, live_server, "brand@example.com")
    manager.goto(f"{live_server.url}/console/{tenant.slug}/consent/{consent.pk}/")
    manager.fill("#id_reason", "The talent withdrew consent by email on Monday.")
    manager.click("main button:has-text('Revoke consent')")
    manager.click("#confirm-dialog [data-ok]")  # the confirmation dialog
    manager.wait_for_selector("#effects")
    effects = manager.inner_text("#effects")
    assert "403 consent_revoked" in effects
    assert manager.inner_text("[data-voice-status=dana]") == "Disabled"
    assert manager.inner_text("#fine-tunes-cancelled").startswith("1")
    assert "1 artefact to be purged after" in manager.inner_text("#artefact-purge")
    assert manager.inner_text("#consent-status") == "Revoked"
    screenshot(manager, "consent-revoked")
    brand.close()


def test_a_leaked_clip_is_traced_in_place(
    page,
    live_server,
    tenant,
    other_tenant,
    make_member,
    make_key,
    client_for,
    celery_worker,
    tmp_path,
):
    def synthesize(owner, text):
        key = make_key(owner, name="mobile app")
        response = client_for(key.token).post(
            "/api/v1/synthesize", {"voice": "stock-joe", "text": text, "format": "mp3"},
            format="json",
        )  # fmt: skip
        assert response.status_code == 200
        return key, response

    key, response = synthesize(tenant, "This clip will leak onto the internet tomorrow.")
    clip = tmp_path / "found-online.mp3"
    clip.write_bytes(response.content)
    _, theirs = synthesize(other_tenant, "Another tenant's announcement.")
    foreign = tmp_path / "foreign.mp3"
    foreign.write_bytes(theirs.content)
    make_member(tenant, "auditor", email="auditor@example.com")

    sign_in(page, live_server, "auditor@example.com")
    assert key.token not in page.content()
    page.click("nav >> text=Trace a clip")
    page.click("main button[type=submit]")  # no file: the browser's own check stops it
    page.set_input_files("input[name=file]", str(clip))
    page.click("main button[type=submit]")
    page.wait_for_selector("#result")
    result = page.inner_text("#result")
    assert page.inner_text("#verdict") == "watermarked", result
    assert response["X-Request-Id"] in result and "stock-joe" in result
    assert page.evaluate("() => performance.getEntriesByType('navigation').length") == 1
    assert page.url.endswith("/watermark/")  # swapped in place, no page load
    assert_accessible(page)
    screenshot(page, "watermark")

    page.set_input_files("input[name=file]", str(foreign))
    page.click("main button[type=submit]")
    page.wait_for_selector("#owner")
    result = page.inner_text("#result")
    assert "another tenant of this platform" in result
    assert theirs["X-Request-Id"] not in result and other_tenant.slug not in result

    page.set_input_files("input[name=file]", {"name": "notes.wav", "mimeType": "audio/wav",
                                              "buffer": b"not audio at all" * 10})  # fmt: skip
    page.click("main button[type=submit]")
    page.wait_for_selector("#id_file_error")
    assert page.inner_text("#id_file_error")
