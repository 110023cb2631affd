"""Helpers for the custom-voice journeys: synthetic talents speak real audio, and the steps a
brand manager takes go through the public API."""

from __future__ import annotations

import csv
import io
import time
import zipfile
from datetime import timedelta

import numpy as np
from django.utils import timezone

from consent.models import ConsentRecord, VoiceTalent
from speech import audio
from speech.testing import talents as T
from voices.models import TrainingRecording, Voice

SR = T.SAMPLE_RATE
DEV = T.by_name("dev")  # Piper with formants x0.88 and -2 semitones: adapts well
AVA = T.by_name("ava")  # espeak-ng en-us+f2: clearly another person
TALENT_NAME = "Dana Fischer"
COMPANY = "Acme Limited"


def take(talent, text: str) -> np.ndarray:
    """The talent saying `text` as a real take sounds: with half a second of quiet room tone
    (-70 dBFS) before and after."""
    rng = np.random.default_rng(len(text))
    tone = (rng.standard_normal(SR // 2) * 10 ** (-70 / 20)).astype(np.float32)
    return np.concatenate([tone, np.asarray(T.render(talent, text)), tone])


def wav(talent, text: str) -> bytes:
    return audio.encode(take(talent, text), SR, "wav")


def dataset_zip(talent, sentences, extra: dict[str, bytes] | None = None, rows=()) -> bytes:
    """A zip with metadata.csv (file, transcript) and one WAV per sentence."""
    buf = io.BytesIO()
    meta = io.StringIO()
    writer = csv.writer(meta)
    writer.writerow(["file", "transcript"])
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for i, text in enumerate(sentences):
            name = f"clips/{i:02d}.wav"
            zf.writestr(name, wav(talent, text))
            writer.writerow([name, text])
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
        for row in rows:
            writer.writerow(row)
        zf.writestr("metadata.csv", meta.getvalue())
    return buf.getvalue()


def upload(client, url: str, data: bytes, name: str = "upload.bin", **fields):
    """A multipart upload, as `curl -F file=@...` sends it."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    return client.post(url, {"file": SimpleUploadedFile(name, data), **fields})


def poll(client, url: str, done, timeout: float = 180.0, interval: float = 0.5) -> dict:
    deadline = time.monotonic() + timeout
    body = None
    while time.monotonic() < deadline:
        response = client.get(url)
        assert response.status_code == 200, response.content
        body = response.json()
        if done(body):
            return body
        time.sleep(interval)
    raise AssertionError(f"{url} did not finish in {timeout} s; last: {body}")


def dataset_settled(report: dict) -> bool:
    return report["totals"]["files"] > 0 and report["totals"]["processing"] == 0


def consent_settled(consent: dict) -> bool:
    return consent["status"] not in ("pending", "verifying")


def enrol(client, *, slug: str, talent=DEV, sentences=T.TRAIN_SENTENCES[:3]) -> dict:
    """Talent + draft voice + accepted training recordings. Returns ids."""
    made = client.post(
        "/api/v1/talents", {"name": TALENT_NAME, "email": "dana@example.com"}, format="json"
    )
    assert made.status_code == 201, made.content
    talent_id = made.json()["id"]
    voice = client.post(
        "/api/v1/voices", {"slug": slug, "name": "Dana", "talent": talent_id}, format="json"
    )
    assert voice.status_code == 201, voice.content
    response = upload(client, f"/api/v1/voices/{slug}/recordings", dataset_zip(talent, sentences),
                      "dataset.zip")  # fmt: skip
    assert response.status_code == 202, response.content
    report = poll(client, f"/api/v1/voices/{slug}/dataset", dataset_settled)
    assert report["totals"]["accepted"] == len(sentences), report
    return {"talent": talent_id, "voice": slug}


def request_consent(client, talent_id: str, voice: str) -> dict:
    response = client.post("/api/v1/consents", {"talent": talent_id, "voice": voice}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def record_consent(client, consent: dict, data: bytes):
    return upload(client, f"/api/v1/consents/{consent['id']}/recording", data, "consent.wav")


def verify_with(client, consent: dict, data: bytes) -> dict:
    response = record_consent(client, consent, data)
    assert response.status_code == 202, response.content
    return poll(client, f"/api/v1/consents/{consent['id']}", consent_settled)


def codes(consent: dict) -> set[str]:
    return {reason["code"] for reason in consent["reasons"]}


# --- rows as a verified enrolment leaves them, for tests that need no models ---------------------
def talent_row(tenant) -> VoiceTalent:
    return VoiceTalent.objects.for_tenant(tenant).create(tenant=tenant, name="Dana Fischer")


def verified_voice_rows(tenant, slug="dana", recordings=8) -> Voice:
    """A custom voice of a talent with a verified consent and accepted recordings."""
    talent = talent_row(tenant)
    voice = Voice.objects.for_tenant(tenant).create(
        tenant=tenant, slug=slug, name=slug, kind=Voice.Kind.CUSTOM, talent=talent
    )
    consent = ConsentRecord.objects.for_tenant(tenant).create(
        tenant=tenant,
        talent=talent,
        voice=voice,
        language="en-US",
        template_version=1,
        company="Acme",
        purpose="p",
        challenge="maple seven",
        statement="s",
        status=ConsentRecord.Status.VERIFIED,
        statement_expires_at=timezone.now() + timedelta(hours=1),
    )
    voice.consent = consent
    voice.save(update_fields=["consent"])
    TrainingRecording.objects.for_tenant(tenant).bulk_create(
        TrainingRecording(
            tenant=tenant,
            voice=voice,
            filename=f"{i}.wav",
            transcript="t",
            status=TrainingRecording.Status.ACCEPTED,
        )
        for i in range(recordings)
    )
    return voice
