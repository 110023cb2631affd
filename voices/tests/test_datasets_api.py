"""Training data through the API and a real worker: unsafe archives are refused whole, bad files
are rejected one by one with their reason in the dataset report, accepted audio is trimmed and
normalised."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from core.storage import get_storage
from speech import audio, quality
from speech.testing import talents as T
from voices.models import TrainingRecording
from voices.tests.journey import DEV, SR, dataset_settled, dataset_zip, poll, upload, wav

pytestmark = [pytest.mark.django_db(transaction=True)]

GOOD = T.TRAIN_SENTENCES[:2]


@pytest.fixture
def voice_client(tenant, make_key, client_for):
    client = client_for(make_key(tenant).token)
    talent = client.post("/api/v1/talents", {"name": "Dana Fischer"}, format="json").json()
    made = client.post(
        "/api/v1/voices", {"slug": "dana", "name": "Dana", "talent": talent["id"]}, format="json"
    )
    assert made.status_code == 201, made.content
    return client


def _zip(members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _refused(client, data: bytes) -> dict:
    response = upload(client, "/api/v1/voices/dana/recordings", data, "data.zip")
    assert response.status_code == 400, response.content
    return response.json()["error"]


def test_unsafe_archives_are_refused_whole(voice_client, tenant):
    meta = b"file,transcript\na.wav,hello there\n"
    bomb = _zip({"metadata.csv": meta, "a.wav": b"\0" * (300 * 1024 * 1024)})
    assert len(bomb) < 1024 * 1024
    assert _refused(voice_client, bomb)["code"] == "zip_bomb"
    escape = _zip({"metadata.csv": b"file,transcript\n../evil.wav,hi\n", "../evil.wav": b"x"})
    assert _refused(voice_client, escape)["code"] == "unsafe_path"
    absolute = _zip({"metadata.csv": b"file,transcript\n/etc/x.wav,hi\n", "/etc/x.wav": b"x"})
    assert _refused(voice_client, absolute)["code"] == "unsafe_path"
    assert _refused(voice_client, _zip({"a.wav": wav(DEV, GOOD[0])}))["code"] == "missing_metadata"
    # Nothing was stored or queued.
    assert not TrainingRecording.objects.for_tenant(tenant).exists()
    report = voice_client.get("/api/v1/voices/dana/dataset").json()
    assert report["totals"]["files"] == 0


@pytest.mark.worker
@pytest.mark.slow
def test_planted_bad_files_are_rejected_with_reasons(voice_client, tenant, celery_worker):
    good = np.asarray(T.render(DEV, GOOD[0]))
    rng = np.random.default_rng(0)
    noisy = good + rng.normal(0, 0.08, len(good)).astype(np.float32)
    fresh = np.asarray(T.render(DEV, T.TRAIN_SENTENCES[3]))
    padded = np.concatenate([np.zeros(SR, np.float32), fresh, np.zeros(SR, np.float32)])
    planted = {
        "bad/corrupt.wav": b"RIFF\x00\x00\x00\x00WAVEfmt " + rng.bytes(2000),
        # A muted microphone: only the converter's noise floor (-80 dBFS).
        "bad/silent.wav": audio.encode(rng.normal(0, 1e-4, 3 * SR).astype(np.float32), SR, "wav"),
        "bad/clipped.wav": audio.encode(np.clip(good * 30, -1, 1), SR, "wav"),
        "bad/noisy.wav": audio.encode(noisy, SR, "wav"),
        "bad/duplicate.flac": audio.encode(good, SR, "flac"),
        "bad/mismatch.wav": wav(DEV, T.TRAIN_SENTENCES[9]),
        "ok/padded.wav": audio.encode(padded * 0.2, SR, "wav"),
    }
    rows = [
        ["bad/corrupt.wav", GOOD[1]],
        ["bad/silent.wav", GOOD[1]],
        ["bad/clipped.wav", GOOD[0]],
        ["bad/noisy.wav", GOOD[0]],
        ["bad/duplicate.flac", GOOD[0]],
        ["bad/mismatch.wav", "Completely different words from the ones spoken here."],
        ["bad/missing.wav", GOOD[1]],
        ["ok/padded.wav", T.TRAIN_SENTENCES[3]],
    ]
    data = dataset_zip(DEV, GOOD, extra=planted, rows=rows)
    response = upload(voice_client, "/api/v1/voices/dana/recordings", data, "dataset.zip")
    assert response.status_code == 202, response.content
    report = poll(voice_client, "/api/v1/voices/dana/dataset", dataset_settled, timeout=240)
    by_name = {f["filename"]: {p["code"] for p in f["problems"]} for f in report["files"]}
    assert by_name["clips/00.wav"] == by_name["clips/01.wav"] == by_name["ok/padded.wav"] == set()
    assert "undecodable" in by_name["bad/corrupt.wav"]
    assert "silent" in by_name["bad/silent.wav"]
    assert "clipped" in by_name["bad/clipped.wav"]
    assert "too_noisy" in by_name["bad/noisy.wav"]
    assert "duplicate" in by_name["bad/duplicate.flac"]
    assert "transcript_mismatch" in by_name["bad/mismatch.wav"]
    assert by_name["bad/missing.wav"] and "bad/missing.wav" in by_name
    assert report["totals"] == {**report["totals"], "accepted": 3, "rejected": 7}
    assert all(p["message"] for f in report["files"] for p in f["problems"])
    # Accepted audio is stored trimmed (the 2 s of padding) and loudness-normalised (-14 dB).
    accepted = TrainingRecording.objects.for_tenant(tenant).get(filename="ok/padded.wav")
    samples, sr = audio.decode(get_storage().get(accepted.audio_key))
    assert abs(quality.assess(samples, sr).speech_rms_dbfs + 20) < 2.0
    assert len(samples) / sr < len(fresh) / SR + 0.5
