"""Voices pages without a browser: each step's bad input, roles, tenant isolation and query
budgets. Models and workers are not needed: rows are made as the services leave them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from consent.models import ConsentEvidence, ConsentRecord, VoiceTalent
from synthesis.models import SynthesisRequest
from voices.models import FineTuneJob, TrainingRecording, Voice, VoiceVersion
from voices.tests.journey import verified_voice_rows

pytestmark = pytest.mark.django_db

STEPS = [
    "talent",
    "recordings",
    "statement",
    "recording",
    "verification",
    "fine-tune",
    "evaluation",
    "playground",
]


@pytest.fixture
def manager(client, tenant, make_member):
    client.force_login(make_member(tenant, "brand_manager"))
    return client


def url(tenant, voice=None, step=None) -> str:
    base = f"/console/{tenant.slug}/voices/"
    if voice is None:
        return base
    return f"{base}{voice.pk}/" + (f"{step}/" if step else "")


def draft_voice(tenant, slug="dana", **fields) -> Voice:
    talent = VoiceTalent.objects.for_tenant(tenant).create(tenant=tenant, name="Dana Fischer")
    return Voice.objects.for_tenant(tenant).create(
        tenant=tenant, slug=slug, name=slug.title(), kind=Voice.Kind.CUSTOM, talent=talent,
        **fields,
    )  # fmt: skip


def accepted(tenant, voice, n):
    TrainingRecording.objects.for_tenant(tenant).bulk_create(
        TrainingRecording(
            tenant=tenant,
            voice=voice,
            filename=f"{i:02d}.wav",
            transcript="t",
            status=TrainingRecording.Status.ACCEPTED,
            duration_s=2.5,
        )
        for i in range(n)
    )


def statement(tenant, voice, *, status=ConsentRecord.Status.PENDING, expires_in=3600, **fields):
    return ConsentRecord.objects.for_tenant(tenant).create(
        tenant=tenant,
        talent=voice.talent,
        voice=voice,
        language="en-US",
        template_version=1,
        company="Acme",
        purpose="brand voice",
        challenge="amber falcon 42",
        statement="I, Dana Fischer, agree. My phrase is amber falcon 42. Thank you.",
        status=status,
        statement_expires_at=timezone.now() + timedelta(seconds=expires_in),
        **fields,
    )


def wav_bytes() -> bytes:
    import numpy as np

    from speech import audio

    t = np.arange(22050 * 2) / 22050
    return audio.encode((0.2 * np.sin(2 * np.pi * 220 * t)).astype("float32"), 22050, "wav")


# --- the list ----------
def test_empty_list_invites_the_first_enrolment(manager, tenant):
    page = manager.get(url(tenant))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Enrol your first brand voice" in html
    assert f"/console/{tenant.slug}/voices/new/" in html
    assert "stock-joe" in html  # the stock voices are listed too


def test_list_shows_status_talent_consent_and_version_and_filters(manager, tenant):
    dana = verified_voice_rows(tenant)
    draft = draft_voice(tenant, "nico")
    statement(tenant, draft)
    html = manager.get(url(tenant)).content.decode()
    assert "Dana Fischer" in html and "Verified" in html and "Pending" in html
    assert "Enrol your first brand voice" not in html
    ready = manager.get(url(tenant) + "?status=ready").content.decode()
    assert "stock-joe" in ready and "nico" not in ready and dana.slug not in ready
    drafts = manager.get(url(tenant) + "?status=draft", HTTP_HX_REQUEST="true")
    assert drafts.status_code == 200 and "<html" not in drafts.content.decode()
    assert "nico" in drafts.content.decode() and "stock-joe" not in drafts.content.decode()


def test_list_query_budget_with_30_voices(manager, tenant, page_queries):
    for i in range(30):
        voice = draft_voice(tenant, f"voice-{i:02d}")
        statement(tenant, voice)
    with page_queries():
        page = manager.get(url(tenant))
    assert page.status_code == 200 and "voice-29" in page.content.decode()


# --- step 1: talent ------------------------------------------------------------------------------
def test_enrol_creates_talent_and_voice_and_opens_recordings(manager, tenant):
    response = manager.post(
        url(tenant) + "new/",
        {
            "talent_name": "Dana Fischer",
            "talent_email": "dana@example.com",
            "name": "Dana",
            "slug": "dana",
            "language": "en-US",
        },
    )
    voice = Voice.objects.for_tenant(tenant).get(slug="dana")
    assert response.status_code == 302 and response["Location"] == url(tenant, voice, "recordings")
    assert voice.talent.name == "Dana Fischer" and voice.status == Voice.Status.DRAFT
    # The voice's own page reopens the wizard where it stands.
    assert manager.get(url(tenant, voice))["Location"] == url(tenant, voice, "recordings")


@pytest.mark.parametrize(
    "fields, field, message",
    [
        ({"talent_name": ""}, "talent_name", "required"),
        ({"talent_email": "not-an-email"}, "talent_email", "valid email"),
        ({"slug": "Not A Slug"}, "slug", "cannot name a custom voice"),
        ({"slug": "alloy"}, "slug", "cannot name a custom voice"),
        ({"slug": "taken"}, "slug", "already exists"),
        ({"language": "xx-XX"}, "language", "valid choice"),
    ],
)
def test_enrol_form_errors_are_next_to_the_field(manager, tenant, fields, field, message):
    draft_voice(tenant, "taken")
    data = {"talent_name": "Dana", "name": "Dana", "slug": "dana", "language": "en-US", **fields}
    before = VoiceTalent.objects.for_tenant(tenant).count()
    response = manager.post(url(tenant) + "new/", data)
    assert response.status_code == 400
    html = response.content.decode()
    error = html.split(f'id="id_{field}_error"')[1].split("</p>")[0]
    assert message in error, error
    # Nothing half-made: no talent without its voice.
    assert VoiceTalent.objects.for_tenant(tenant).count() == before


# --- recordings ----------
def test_recordings_upload_errors(manager, tenant, settings):
    voice = draft_voice(tenant)
    step = url(tenant, voice, "recordings")
    none = manager.post(step, {})
    assert none.status_code == 400 and 'id="id_files_error"' in none.content.decode()
    mismatch = manager.post(
        step, {"files": [SimpleUploadedFile("a.wav", wav_bytes())], "transcripts": ""}
    )
    assert mismatch.status_code == 400
    assert "one transcript line per audio file" in mismatch.content.decode()
    settings.TRAINING_MAX_RECORDING_BYTES = 100
    big = manager.post(step, {"files": [SimpleUploadedFile("a.wav", wav_bytes())],
                              "transcripts": "Hello there."})  # fmt: skip
    html = big.content.decode()
    assert (
        big.status_code == 400 and "larger than 100 bytes" in html.split('id="id_files_error"')[1]
    )
    not_zip_bomb = manager.post(step, {"files": [SimpleUploadedFile("d.zip", b"PK\x03\x04junk")]})
    assert (
        not_zip_bomb.status_code == 400 and 'id="id_files_error"' in not_zip_bomb.content.decode()
    )
    assert not TrainingRecording.objects.for_tenant(tenant).exists()


def test_recordings_upload_many_report_and_delete(manager, tenant):
    voice = draft_voice(tenant)
    step = url(tenant, voice, "recordings")
    files = [SimpleUploadedFile("one.wav", wav_bytes()), SimpleUploadedFile("two.wav", wav_bytes())]
    response = manager.post(step, {"files": files, "transcripts": "First line.\nSecond line."})
    assert response.status_code == 302
    rows = {r.filename: r for r in TrainingRecording.objects.for_tenant(tenant)}
    assert set(rows) == {"one.wav", "two.wav"}
    assert rows["two.wav"].transcript == "Second line."
    TrainingRecording.objects.for_tenant(tenant).filter(pk=rows["one.wav"].pk).update(
        status="rejected", problems=[{"code": "too_noisy", "message": "Too much noise."}]
    )
    page = manager.get(step).content.decode()
    assert "too_noisy" in page and "Too much noise." in page
    assert 'hx-trigger="every 2s"' in page  # two.wav is still being checked
    deleted = manager.post(step, {"delete": str(rows["one.wav"].pk)})
    assert deleted.status_code == 302
    assert list(
        TrainingRecording.objects.for_tenant(tenant).values_list("filename", flat=True)
    ) == ["two.wav"]


# --- statement and recording ----------
def test_statement_is_requested_shown_with_challenge_and_countdown(manager, tenant):
    voice = draft_voice(tenant)
    accepted(tenant, voice, 3)
    assert manager.get(url(tenant, voice))["Location"] == url(tenant, voice, "statement")
    assert manager.post(url(tenant, voice, "statement")).status_code == 302
    consent = ConsentRecord.objects.for_tenant(tenant).get(voice=voice)
    html = manager.get(url(tenant, voice, "statement")).content.decode()
    assert f'<mark class="challenge">{consent.challenge}</mark>' in html
    assert "data-countdown=" in html
    # The wizard now resumes at the recording step.
    assert manager.get(url(tenant, voice))["Location"] == url(tenant, voice, "recording")


def test_expired_statement_offers_a_fresh_one(manager, tenant):
    voice = draft_voice(tenant)
    accepted(tenant, voice, 3)
    statement(tenant, voice, expires_in=-10)
    assert manager.get(url(tenant, voice))["Location"] == url(tenant, voice, "statement")
    html = manager.get(url(tenant, voice, "statement")).content.decode()
    assert "expired" in html and "Request a fresh statement" in html


def test_consent_recording_errors(manager, tenant, settings):
    voice = draft_voice(tenant)
    step = url(tenant, voice, "recording")
    no_statement = manager.post(step, {"file": SimpleUploadedFile("c.wav", wav_bytes())})
    assert no_statement.status_code == 400 and "Request the statement" in (
        no_statement.content.decode()
    )
    statement(tenant, voice)
    missing = manager.post(step, {})
    assert missing.status_code == 400
    assert "Record the statement or choose a file" in missing.content.decode()
    empty = manager.post(step, {"file": SimpleUploadedFile("c.wav", b"")})
    assert empty.status_code == 400 and 'id="id_file_error"' in empty.content.decode()
    too_few = manager.post(step, {"file": SimpleUploadedFile("c.wav", wav_bytes())})
    assert too_few.status_code == 400 and "training recordings" in too_few.content.decode()
    accepted(tenant, voice, 3)
    text = manager.post(step, {"file": SimpleUploadedFile("c.wav", b"not audio at all " * 20)})
    assert (
        text.status_code == 400
        and "not an audio file" in (text.content.decode().split('id="id_file_error"')[1])
    )
    settings.CONSENT_MAX_RECORDING_BYTES = 1024
    big = manager.post(step, {"file": SimpleUploadedFile("c.wav", wav_bytes())})
    assert (
        big.status_code == 400
        and "larger than" in big.content.decode().split('id="id_file_error"')[1]
    )


def test_the_api_refuses_a_consent_recording_that_is_not_audio_like_the_console(tenant, api):
    voice = draft_voice(tenant)
    consent = statement(tenant, voice)
    accepted(tenant, voice, 3)
    response = api.post(
        f"/api/v1/consents/{consent.pk}/recording",
        {"file": SimpleUploadedFile("c.wav", b"<html>not audio</html>" * 10)},
        format="multipart",
    )
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_audio_format"
    consent.refresh_from_db()
    assert consent.status == ConsentRecord.Status.PENDING and not consent.recording_key


def test_expired_statement_recording_is_refused_next_to_the_field(manager, tenant):
    voice = draft_voice(tenant)
    accepted(tenant, voice, 3)
    statement(tenant, voice, expires_in=-10)
    response = manager.post(
        url(tenant, voice, "recording"), {"file": SimpleUploadedFile("c.wav", wav_bytes())}
    )
    assert response.status_code == 400
    assert "expired" in response.content.decode().split('id="id_file_error"')[1]


def test_consent_recording_is_queued_and_verification_polls(manager, tenant):
    voice = draft_voice(tenant)
    accepted(tenant, voice, 3)
    consent = statement(tenant, voice)
    response = manager.post(
        url(tenant, voice, "recording"),
        {"file": SimpleUploadedFile("consent-recording.webm", wav_bytes())},
    )
    assert response.status_code == 302
    assert response["Location"] == url(tenant, voice, "verification")
    consent.refresh_from_db()
    assert consent.status == ConsentRecord.Status.VERIFYING
    page = manager.get(url(tenant, voice, "verification")).content.decode()
    assert 'hx-trigger="every 2s"' in page
    fragment = manager.get(url(tenant, voice, "verification"), HTTP_HX_REQUEST="true")
    assert "<html" not in fragment.content.decode() and "Checking" in fragment.content.decode()


def test_rejected_verification_shows_each_check_and_what_next(manager, tenant):
    voice = draft_voice(tenant)
    accepted(tenant, voice, 3)
    reasons = [{"code": "speaker_mismatch", "message": "Another person is speaking."}]
    consent = statement(tenant, voice, status=ConsentRecord.Status.REJECTED, reasons=reasons)
    ConsentEvidence.objects.for_tenant(tenant).create(
        tenant=tenant,
        consent=consent,
        passed=False,
        transcript="I Dana Fischer agree",
        checks=[
            {"name": "statement", "passed": True, "code": "ok", "message": "Words match.",
             "score": 0.05, "threshold": 0.25},
            {"name": "speaker", "passed": False, "code": "speaker_mismatch",
             "message": "Another person is speaking.", "score": 0.41, "threshold": 0.912},
        ],
    )  # fmt: skip
    html = manager.get(url(tenant, voice, "verification")).content.decode()
    assert "speaker_mismatch" in html and "0.410" in html and "0.912" in html
    assert "Pass" in html and "Fail" in html and "Request a fresh statement" in html
    assert 'hx-trigger="every 2s"' not in html


# --- fine-tune and evaluation ----------
def test_fine_tune_refusals_and_progress(manager, tenant, settings):
    voice = draft_voice(tenant)
    step = url(tenant, voice, "fine-tune")
    refused = manager.post(step, {"steps": ""})
    assert refused.status_code == 400 and "fine-tuning needs a verified consent" in (
        refused.content.decode()
    )
    voice = verified_voice_rows(tenant, slug="ready-to-train")
    step = url(tenant, voice, "fine-tune")
    bad_steps = manager.post(step, {"steps": "5"})
    assert bad_steps.status_code == 400 and 'id="id_steps_error"' in bad_steps.content.decode()
    too_many = manager.post(step, {"steps": str(settings.FINE_TUNE_MAX_STEPS + 1)})
    assert too_many.status_code == 400 and 'id="id_steps_error"' in too_many.content.decode()
    started = manager.post(step, {"steps": "50"})
    assert started.status_code == 302
    job = FineTuneJob.objects.for_tenant(tenant).get(voice=voice)
    FineTuneJob.objects.for_tenant(tenant).filter(pk=job.pk).update(
        status="running", phase="train", step=20, total_steps=50, loss=0.1234, percent=49.0,
        eta_s=31.0,
    )  # fmt: skip
    fragment = manager.get(step, HTTP_HX_REQUEST="true").content.decode()
    assert 'hx-trigger="every 2s"' in fragment and "train" in fragment and "0.1234" in fragment
    assert 'value="49.0"' in fragment and "31 s" in fragment
    again = manager.post(step, {"steps": "50"})
    assert again.status_code in (200, 400)  # no start form while one runs: the service refuses
    cancelled = manager.post(step, {"cancel": str(job.pk)})
    assert cancelled.status_code == 302
    job.refresh_from_db()
    assert job.status == "cancelled"
    failed = manager.get(step).content.decode()
    assert "Cancelled on request." in failed


def test_evaluation_shows_metrics_beside_stock_and_gates(manager, tenant):
    voice = verified_voice_rows(tenant)
    VoiceVersion.objects.for_tenant(tenant).create(
        tenant=tenant,
        voice=voice,
        number=1,
        status=VoiceVersion.Status.FAILED,
        metrics={"speaker_similarity": 0.71, "stock_similarity": 0.62, "talent_similarity": 0.93,
                 "wer": 0.08, "stock_wer": 0.02, "talent_wer": 0.04, "mos": 3.61,
                 "stock_mos": 4.05, "talent_mos": 3.7, "held_out_count": 3},
        gate_failures=[{"metric": "speaker_similarity", "value": 0.71, "threshold": 0.75,
                        "message": "speaker_similarity 0.710 < 0.75"}],
    )  # fmt: skip
    html = manager.get(url(tenant, voice, "evaluation")).content.decode()
    table = html.split('id="evaluation"')[1].split("</table>")[0]
    assert "0.710" in table and "0.620" in table and "4.050" in table
    assert table.count("Fail") == 1 and table.count("Pass") >= 2
    assert "speaker_similarity 0.710 &lt; 0.75" in html


# --- playground ----------
def test_playground_bad_input_next_to_the_field(manager, tenant):
    stock = Voice.dangerously_unscoped.get(slug="stock-joe", tenant=None)
    step = url(tenant, stock, "playground")
    page = manager.get(step)
    assert page.status_code == 200 and "Happy" in page.content.decode()
    base = {"voice": "stock-joe", "text": "Hello.", "emotion": "neutral", "speed": "1",
            "pitch": "0"}  # fmt: skip
    cases = [
        ({"text": ""}, "text", "Type the text"),
        ({"text": "x" * (tenant.plan.max_text_characters + 1)}, "text", "at most"),
        ({"voice": "nobody"}, "voice", "valid choice"),
        ({"speed": "3"}, "speed", "less than or equal to 2"),
        ({"pitch": "-9"}, "pitch", "greater than or equal to -6"),
        ({"emotion": "smug"}, "emotion", "valid choice"),
    ]
    for fields, field, message in cases:
        response = manager.post(step, {**base, **fields})
        assert response.status_code == 400, fields
        error = response.content.decode().split(f'id="id_{field}_error"')[1].split("</p>")[0]
        assert message in error, (fields, error)
    assert not SynthesisRequest.objects.for_tenant(tenant).exists()


def test_playground_voice_not_ready_and_consent_revoked(manager, tenant):
    draft = draft_voice(tenant)
    response = manager.post(
        url(tenant, draft, "playground"),
        {"voice": draft.slug, "text": "Hello.", "emotion": "neutral", "speed": "1", "pitch": "0"},
    )
    assert response.status_code == 409
    assert "no verified consent" in response.content.decode().split('id="id_voice_error"')[1]
    revoked = verified_voice_rows(tenant, slug="gone")
    ConsentRecord.objects.for_tenant(tenant).filter(pk=revoked.consent_id).update(
        status=ConsentRecord.Status.REVOKED
    )
    Voice.objects.for_tenant(tenant).filter(pk=revoked.pk).update(
        status=Voice.Status.DISABLED, disabled_reason="consent_revoked"
    )
    response = manager.post(
        url(tenant, revoked, "playground"),
        {"voice": "gone", "text": "Hello.", "emotion": "neutral", "speed": "1", "pitch": "0"},
    )
    assert response.status_code == 403
    assert "revoked" in response.content.decode().split('id="id_voice_error"')[1]
    assert not SynthesisRequest.objects.for_tenant(tenant).exists()


def test_clip_audio_is_the_tenants_own(client, tenant, other_tenant, make_member, make_job):
    from core.storage import get_storage

    job = make_job(tenant, status=SynthesisRequest.Status.SUCCEEDED, audio_key="t/clip.wav")
    get_storage().put("t/clip.wav", wav_bytes(), "audio/wav")
    client.force_login(make_member(tenant, "developer"))
    clip = f"/console/{tenant.slug}/voices/clips/{job.pk}/audio/"
    response = client.get(clip)
    assert response.status_code == 200 and response["Content-Type"] == "audio/wav"
    client.force_login(make_member(tenant, "auditor"))  # no synthesize scope
    assert client.get(clip).status_code == 404
    client.force_login(make_member(other_tenant, "owner"))
    assert client.get(clip).status_code == 404
    assert client.get(f"/console/{other_tenant.slug}/voices/clips/{job.pk}/audio/").status_code == (
        404
    )


# --- roles and tenants ----------
def test_auditor_reads_but_changes_nothing(client, tenant, make_member):
    voice = verified_voice_rows(tenant)
    pending = draft_voice(tenant, "nico")
    accepted(tenant, pending, 3)
    statement(tenant, pending)
    client.force_login(make_member(tenant, "auditor"))
    listing = client.get(url(tenant)).content.decode()
    assert "dana" in listing and "/voices/new/" not in listing
    assert client.get(url(tenant) + "new/").status_code == 404
    for step in STEPS[:-1]:
        page = client.get(url(tenant, pending, step))
        assert page.status_code == 200, step
        html = page.content.decode()
        assert '<form method="post"' not in html.split("<main")[1].replace(
            'action="/console/logout/"', ""
        ), step
    assert "amber falcon 42" in client.get(url(tenant, pending, "statement")).content.decode()
    assert client.get(url(tenant, voice, "playground")).status_code == 404
    posts = {
        "recordings": {"files": [SimpleUploadedFile("a.wav", wav_bytes())], "transcripts": "x"},
        "statement": {},
        "recording": {"file": SimpleUploadedFile("c.wav", wav_bytes())},
        "fine-tune": {"steps": "50"},
        "playground": {"voice": "dana", "text": "Hi", "emotion": "neutral", "speed": "1",
                       "pitch": "0"},
    }  # fmt: skip
    for step, data in posts.items():
        target = voice if step in ("fine-tune", "playground") else pending
        assert client.post(url(tenant, target, step), data).status_code in (403, 404), step
    assert ConsentRecord.objects.for_tenant(tenant).count() == 2
    assert not FineTuneJob.objects.for_tenant(tenant).exists()
    assert TrainingRecording.objects.for_tenant(tenant).count() == 8 + 3


def test_developer_cannot_enrol_but_uses_the_playground(client, tenant, make_member):
    voice = draft_voice(tenant)
    client.force_login(make_member(tenant, "developer"))
    assert "/voices/new/" not in client.get(url(tenant)).content.decode()
    assert client.get(url(tenant) + "new/").status_code == 404
    assert client.post(url(tenant) + "new/", {"talent_name": "x"}).status_code == 404
    assert client.post(url(tenant, voice, "statement")).status_code == 403
    assert client.get(url(tenant, voice, "statement")).status_code == 200
    assert (
        "Your role cannot read consent statements"
        in client.get(url(tenant, voice, "statement")).content.decode()
    )
    stock = Voice.dangerously_unscoped.get(slug="stock-joe", tenant=None)
    assert client.get(url(tenant, stock, "playground")).status_code == 200


def test_another_tenants_voice_is_a_404_on_every_step(client, tenant, other_tenant, make_member):
    theirs = verified_voice_rows(other_tenant, slug="theirs")
    client.force_login(make_member(tenant, "owner"))
    assert client.get(url(tenant, theirs)).status_code == 404
    for step in STEPS:
        assert client.get(url(tenant, theirs, step)).status_code == 404, step
        assert client.post(url(tenant, theirs, step), {}).status_code == 404, step
    assert client.get(url(tenant) + "00000000-0000-0000-0000-000000000000/").status_code == 404
    assert client.get(url(tenant, theirs, "nonsense")).status_code == 404
    # Their talent's name never shows.
    assert "theirs" not in client.get(url(tenant)).content.decode()


def test_wizard_steps_query_budget(manager, tenant, page_queries):
    voice = verified_voice_rows(tenant, recordings=30)
    consent = ConsentRecord.objects.for_tenant(tenant).get(pk=voice.consent_id)
    ConsentEvidence.objects.for_tenant(tenant).create(
        tenant=tenant, consent=consent, passed=True, checks=[{"name": "decode", "passed": True,
        "code": "ok", "message": "ok"}] * 30,
    )  # fmt: skip
    for n in range(1, 4):
        VoiceVersion.objects.for_tenant(tenant).create(
            tenant=tenant, voice=voice, number=n, status="failed", metrics={"wer": 0.1}
        )
    for step in STEPS:
        with page_queries():
            response = manager.get(url(tenant, voice, step))
        assert response.status_code == 200, step
    with page_queries():
        assert manager.get(url(tenant, voice)).status_code in (200, 302)


def test_stock_voice_detail_and_no_wizard(manager, tenant):
    stock = Voice.dangerously_unscoped.get(slug="stock-joe", tenant=None)
    page = manager.get(url(tenant, stock))
    assert page.status_code == 200 and "Playground" in page.content.decode()
    assert manager.get(url(tenant, stock, "recordings")).status_code == 404


def test_ready_voice_detail_shows_consent_versions_and_playground(manager, tenant):
    voice = verified_voice_rows(tenant)
    version = VoiceVersion.objects.for_tenant(tenant).create(
        tenant=tenant, voice=voice, number=1, status="ready", metrics={"speaker_similarity": 0.8}
    )
    Voice.objects.for_tenant(tenant).filter(pk=voice.pk).update(
        status=Voice.Status.READY, active_version=version
    )
    html = manager.get(url(tenant, voice)).content.decode()
    assert "Verified" in html and "v1" in html and "Active" in html
    assert url(tenant, voice, "playground") in html


def test_playground_is_rate_limited_like_the_api(client, make_tenant, make_member):
    tenant = make_tenant("ratey", requests_per_minute_per_key=1)
    client.force_login(make_member(tenant, "brand_manager"))
    voice = draft_voice(tenant)
    data = {"voice": voice.slug, "text": "Hello.", "emotion": "neutral", "speed": "1", "pitch": "0"}
    first = client.post(url(tenant, voice, "playground"), data)
    assert first.status_code == 409  # counted, then refused: the voice is not ready
    second = client.post(url(tenant, voice, "playground"), data)
    assert second.status_code == 429
    assert "Rate limit exceeded" in second.content.decode()
