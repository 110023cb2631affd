"""Bad input to the custom-voice and consent endpoints gets a clear 4xx with a stable code and
changes nothing."""

from __future__ import annotations

import pytest

from consent.models import ConsentRecord
from voices.models import TrainingRecording
from voices.tests.journey import talent_row, upload, verified_voice_rows

pytestmark = pytest.mark.django_db


@pytest.fixture
def client(tenant, make_key, client_for):
    return client_for(make_key(tenant).token)


def _error(response, status: int) -> dict:
    assert response.status_code == status, response.content
    body = response.json()["error"]
    assert body["message"] and body["request_id"]
    return body


def test_voice_creation_input(client, tenant):
    talent = str(talent_row(tenant).pk)
    for slug in ("Bad Slug", "stock-joe", "alloy", "-x", ""):
        body = client.post("/api/v1/voices", {"slug": slug, "name": "X", "talent": talent},
                           format="json")  # fmt: skip
        assert body.status_code == 400, (slug, body.content)
    bad = client.post(
        "/api/v1/voices",
        {"slug": "ok", "name": "X", "talent": talent, "default_controls": {"speed": 9}},
        format="json",
    )
    assert _error(bad, 400)["code"] == "invalid_control"
    client.post("/api/v1/voices", {"slug": "ok", "name": "X", "talent": talent}, format="json")
    again = client.post("/api/v1/voices", {"slug": "ok", "name": "X", "talent": talent},
                        format="json")  # fmt: skip
    assert _error(again, 409)["code"] == "voice_exists"


def test_upload_input(client, tenant, settings):
    verified_voice_rows(tenant, recordings=0)
    url = "/api/v1/voices/dana/recordings"
    assert _error(client.post(url, {}, format="multipart"), 400)["code"] == "file_required"
    no_text = upload(client, url, b"RIFF....", "a.wav")
    assert _error(no_text, 400)["code"] == "empty_transcript"
    settings.TRAINING_MAX_RECORDING_BYTES = 1000
    big = upload(client, url, b"\1" * 2000, "a.wav", transcript="hello")
    assert _error(big, 413)["code"] == "file_too_large"
    settings.DATASET_MAX_UPLOAD_BYTES = 1000
    big_zip = upload(client, url, b"PK\x03\x04" + b"\0" * 2000, "a.zip")
    assert _error(big_zip, 413)["code"] == "file_too_large"
    not_zip = upload(client, url, b"PK\x03\x04 this is not really a zip", "a.zip")
    assert _error(not_zip, 400)["code"] == "not_a_zip"
    assert not TrainingRecording.objects.for_tenant(tenant).exists()
    assert client.get("/api/v1/voices/stock-joe/dataset").status_code == 404
    assert client.get("/api/v1/voices/nobody/dataset").status_code == 404


def test_consent_input(client, tenant, settings):
    voice = verified_voice_rows(tenant)
    other = talent_row(tenant)
    mismatch = client.post(
        "/api/v1/consents", {"talent": str(other.pk), "voice": "dana"}, format="json"
    )
    assert _error(mismatch, 400)["code"] == "talent_mismatch"
    stock = client.post(
        "/api/v1/consents", {"talent": str(voice.talent_id), "voice": "stock-joe"}, format="json"
    )
    assert stock.status_code == 400
    klingon = client.post(
        "/api/v1/consents",
        {"talent": str(voice.talent_id), "voice": "dana", "language": "tlh"},
        format="json",
    )
    assert _error(klingon, 400)["code"] == "unsupported_language"
    consent = client.post(
        "/api/v1/consents", {"talent": str(voice.talent_id), "voice": "dana"}, format="json"
    ).json()
    url = f"/api/v1/consents/{consent['id']}/recording"
    assert _error(client.post(url, {}, format="multipart"), 400)["code"] == "file_required"
    settings.CONSENT_MAX_RECORDING_BYTES = 1000
    assert _error(upload(client, url, b"\1" * 2000, "c.wav"), 413)["code"] == "file_too_large"
    assert ConsentRecord.objects.for_tenant(tenant).get(pk=consent["id"]).status == "pending"
    short = client.post(f"/api/v1/consents/{voice.consent_id}/override", {"reason": "ok"},
                        format="json")  # fmt: skip
    assert _error(short, 400)["code"] == "reason_required"
    assert client.get("/api/v1/consents/not-a-uuid").status_code == 404
