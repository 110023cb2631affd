"""A brand voice from enrolment to revocation, through the API and real workers: a synthetic
talent's recordings, a verified consent, a fine-tune on the worker, synthesis with the custom
voice (native API and the official `openai` SDK), then revocation blocking it at once."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from speech import audio, speaker
from speech.testing import talents as T
from voices.tests.journey import (
    COMPANY,
    DEV,
    SR,
    TALENT_NAME,
    enrol,
    poll,
    request_consent,
    verify_with,
    wav,
)

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

TRAIN = T.TRAIN_SENTENCES[:12]
PROBE = T.HELD_OUT_SENTENCES[0]


@pytest.fixture
def brand(tenant, make_key, client_for, celery_worker):
    tenant.legal_name = COMPANY
    tenant.save(update_fields=["legal_name"])
    return client_for(make_key(tenant).token)


def similarity_to_talent(clip_bytes: bytes, enrolment) -> float:
    samples, sr = audio.decode(clip_bytes)
    return speaker.cosine(enrolment, speaker.embed(samples, sr))


def test_consented_voice_is_trained_synthesized_and_revoked(
    brand, tenant, other_tenant, make_key, client_for, make_job, live_server
):
    ids = enrol(brand, slug="dana", sentences=TRAIN)

    # --- consent: a fresh statement naming talent and company, read by the talent ---------
    consent = request_consent(brand, ids["talent"], "dana")
    assert TALENT_NAME in consent["statement"] and COMPANY in consent["statement"]
    assert consent["challenge"] in consent["statement"]
    recording = wav(DEV, consent["statement"])
    consent = verify_with(brand, consent, recording)
    assert consent["status"] == "verified", consent["reasons"]
    evidence = brand.get(f"/api/v1/consents/{consent['id']}/evidence").json()
    [row] = evidence["evidence"]
    assert row["passed"] and row["audio_sha256"] == hashlib.sha256(recording).hexdigest()
    assert row["transcript"] and row["thresholds"] and row["model_versions"]

    # --- fine-tune on the worker, progress visible ----------------------------------------
    started = brand.post("/api/v1/voices/dana/fine-tunes", {"steps": 300}, format="json")
    assert started.status_code == 202, started.content
    job_url = f"/api/v1/fine-tunes/{started.json()['id']}"
    seen = []
    job = poll(
        brand,
        job_url,
        lambda j: seen.append(j["progress"]) or j["status"] not in ("queued", "running"),
        timeout=400,
    )
    assert job["status"] == "succeeded", job
    assert any(p["phase"] == "train" and p["loss"] is not None for p in seen), seen
    percents = [p["percent"] for p in seen]
    assert percents == sorted(percents)
    [version] = brand.get("/api/v1/voices/dana/versions").json()["results"]
    assert version["status"] == "ready", version["gate_failures"]
    assert version["metrics"]["speaker_similarity"] > version["metrics"]["stock_similarity"]
    voice = brand.get("/api/v1/voices/dana").json()
    assert voice["status"] == "ready" and voice["active_version"] == 1
    assert voice["model_version"].startswith("piper-adapted:")
    # The fine-tune's held-out evaluation is the registered version's validation.
    registered = brand.get(f"/api/v1/models/{voice['model_version']}").json()
    assert registered["status"] == "validated", registered
    assert registered["validation"]["source"] == "fine-tune"
    assert registered["validation"]["metrics"] == version["metrics"]

    # --- synthesis: native API, then the openai SDK; closer to the talent than stock -----------
    enrolment = speaker.mean_embedding(
        [speaker.embed(np.asarray(T.render(DEV, s)), SR) for s in TRAIN[:5]]
    )
    custom = brand.post("/api/v1/synthesize", {"voice": "dana", "text": PROBE}, format="json")
    assert custom.status_code == 200, custom.content
    assert custom["X-Model-Version"] == voice["model_version"]
    stock = brand.post("/api/v1/synthesize", {"voice": "stock-joe", "text": PROBE}, format="json")
    custom_sim = similarity_to_talent(custom.content, enrolment)
    stock_sim = similarity_to_talent(stock.content, enrolment)
    assert custom_sim > stock_sim + 0.05, (custom_sim, stock_sim)
    # Every mode works, and the controls keep working on the converted voice.
    streamed = brand.post(
        "/api/v1/synthesize",
        {"voice": "dana", "text": PROBE, "mode": "stream", "format": "mp3"},
        format="json",
    )
    assert streamed.status_code == 200 and streamed.streaming
    samples, sr = audio.decode(b"".join(streamed.streaming_content))
    assert len(samples) / sr > 1.5
    queued = brand.post(
        "/api/v1/synthesize",
        {"voice": "dana", "text": PROBE, "mode": "async", "format": "flac"},
        format="json",
    )
    assert queued.status_code == 202
    job = poll(brand, queued["Location"], lambda j: j["status"] in ("succeeded", "failed"))
    assert job["status"] == "succeeded", job
    assert job["model_version"] == voice["model_version"]
    base_len = len(audio.decode(custom.content)[0])
    fast = brand.post(
        "/api/v1/synthesize",
        {
            "voice": "dana",
            "text": PROBE,
            "speed": 1.5,
            "pitch": 2.0,
            "emotion": "happy",
        },
        format="json",
    )
    assert fast.status_code == 200, fast.content
    assert len(audio.decode(fast.content)[0]) < 0.85 * base_len
    detected = brand.post(
        "/api/v1/watermark/detect", {"file": _file(custom.content)}, format="multipart"
    ).json()
    assert detected["request"]["id"] == custom["X-Synthesis-Id"], detected

    from openai import OpenAI

    token = make_key(tenant, scopes=["synthesize"]).token
    sdk = OpenAI(base_url=f"{live_server.url}/v1", api_key=token)
    assert "dana" in {v["id"] for v in sdk.get("/audio/voices", cast_to=object)["data"]}
    speech = sdk.audio.speech.create(model="tts-1", voice="dana", input=PROBE, speed=1.2)
    assert similarity_to_talent(speech.content, enrolment) > stock_sim + 0.05

    # --- another tenant sees and uses none of it -------------------------------------------
    intruder = client_for(make_key(other_tenant).token)
    assert intruder.get("/api/v1/voices/dana").status_code == 404
    assert intruder.get(f"/api/v1/talents/{ids['talent']}").status_code == 404
    assert intruder.get(f"/api/v1/consents/{consent['id']}").status_code == 404
    assert intruder.get(f"/api/v1/consents/{consent['id']}/evidence").status_code == 404
    assert intruder.get(job_url).status_code == 404
    refused = intruder.post("/api/v1/synthesize", {"voice": "dana", "text": PROBE}, format="json")
    unknown = intruder.post("/api/v1/synthesize", {"voice": "nobody", "text": PROBE}, format="json")
    assert refused.status_code == unknown.status_code == 400
    assert refused.json()["error"]["code"] == unknown.json()["error"]["code"] == "unknown_voice"

    # --- revocation: at once, including a job already queued ---------------------------------
    from synthesis.models import SynthesisRequest
    from voices.models import Voice

    queued = make_job(tenant, voice=Voice.objects.for_tenant(tenant).get(slug="dana"))
    revoked = brand.post(
        f"/api/v1/consents/{consent['id']}/revoke",
        {"reason": "The talent withdrew consent."},
        format="json",
    )
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    queued.refresh_from_db()
    assert (
        queued.status == SynthesisRequest.Status.FAILED and queued.error_code == "consent_revoked"
    )
    from synthesis.services.admission import dispatch

    dispatch(queued)  # a message still in the queue: the worker must not run it
    blocked = brand.post("/api/v1/synthesize", {"voice": "dana", "text": PROBE}, format="json")
    assert blocked.status_code == 403 and blocked.json()["error"]["code"] == "consent_revoked"
    import openai

    with pytest.raises(openai.PermissionDeniedError) as excinfo:
        sdk.audio.speech.create(model="tts-1", voice="dana", input=PROBE)
    assert excinfo.value.body["code"] == "consent_revoked"
    assert brand.get("/api/v1/voices/dana").json()["status"] == "disabled"
    queued.refresh_from_db()
    assert queued.status == SynthesisRequest.Status.FAILED and not queued.audio_key
    actions = [e["action"] for e in brand.get("/api/v1/audit-events?limit=200").json()["results"]]
    for action in ("consent.request", "consent.verify", "fine_tune.start", "consent.revoke"):
        assert action in actions


def _file(data: bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("clip.wav", data)
