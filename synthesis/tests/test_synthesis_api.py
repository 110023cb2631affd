"""The synthesis API end to end: real worker processes, the real Piper model, real audio."""

from __future__ import annotations

import io
import json
import os
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import numpy as np
import pytest
import soundfile as sf

from speech import asr, audio, dsp
from synthesis.models import SynthesisRequest
from synthesis.webhooks import sign
from tenancy.models import QuotaCounter, UsageRecord
from tenancy.services import quotas
from tenancy.services.tenants import webhook_signing_secret

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

SENTENCE = "The quick brown fox jumps over the lazy dog."


@pytest.fixture
def synth(celery_worker, tenant, make_key, client_for):
    client = client_for(make_key(tenant, scopes=["synthesize", "usage:read"]).token)

    def post(text=SENTENCE, **body):
        return client.post(
            "/api/v1/synthesize", {"voice": "stock-joe", "text": text, **body}, format="json"
        )

    post.client = client
    return post


def decode(response, fmt="wav", sample_rate=22050):
    data = b"".join(response.streaming_content) if response.streaming else response.content
    if fmt == "pcm":
        return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768, sample_rate
    return audio.decode(data)


@pytest.mark.parametrize(
    "fmt,sample_rate",
    [
        ("wav", 22050),
        ("mp3", 44100),
        ("ogg", 16000),
        ("opus", 48000),
        ("flac", 8000),
        ("pcm", 24000),
    ],
)
def test_each_format_decodes_at_the_requested_rate(synth, fmt, sample_rate):
    response = synth(format=fmt, sample_rate=sample_rate)
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"] == audio.CONTENT_TYPES[fmt]
    samples, sr = decode(response, fmt, sample_rate)
    assert sr == sample_rate
    duration = len(samples) / sr
    assert abs(duration - float(response["X-Audio-Duration"])) < 0.1
    assert 1.5 < duration < 6
    assert response["X-Model-Version"].startswith("piper:")
    assert response["X-Characters-Billed"] == str(len(SENTENCE))
    assert response["X-Request-Id"]


def median_f0(samples, sr) -> float:
    f0 = dsp.clean_f0(dsp.estimate_f0(samples, sr)[0])
    return float(np.median(f0[f0 > 0]))


def test_speed_and_pitch_change_what_they_should(synth):
    base, _ = decode(synth())
    fast, _ = decode(synth(speed=1.5))
    assert 0.55 < len(fast) / len(base) < 0.8  # ~1/1.5
    # Each request is a fresh Piper take whose natural F0 varies a little, so compare +4 with
    # -4 semitones: 2 ** (8 / 12) = 1.59, a change far larger than that variation; the median
    # of three takes of each keeps one unusual take (or an octave slip of the F0 tracker) from
    # deciding.
    takes = {shift: [decode(synth(pitch=shift)) for _ in range(3)] for shift in (4, -4)}
    f0 = {shift: np.median([median_f0(x, sr) for x, sr in clips]) for shift, clips in takes.items()}
    ratio = f0[4] / f0[-4]
    assert 1.35 < ratio < 1.85, ratio
    up = takes[4][0][0]
    assert 0.85 < len(up) / len(base) < 1.15  # duration kept


def test_emotions_differ_measurably_from_neutral(synth):
    neutral = dsp.analyze(decode(synth(emotion="neutral"))[0], 22050)
    for emotion in ("happy", "sad", "angry", "calm", "excited", "whispery"):
        stats = dsp.analyze(decode(synth(emotion=emotion, intensity=1.0))[0], 22050)
        changes = {
            name: abs(stats[name] - neutral[name]) / max(abs(neutral[name]), 1e-6)
            for name in ("duration_s", "f0_mean", "f0_spread_st", "centroid_hz", "voiced_frac")
        }
        changes["rms_db"] = abs(stats["rms_db"] - neutral["rms_db"]) / 10  # 1 dB -> 0.1
        assert max(changes.values()) > 0.08, (emotion, changes)


def test_long_text_is_complete(synth, settings):
    text = (
        "Welcome to the quarterly update. Revenue grew twelve percent over the last quarter. "
        "Our support team answered every ticket within a day. Next month we open a new office "
        "in Denver, and we are hiring engineers, designers and writers. Thank you for listening, "
        "and have a wonderful afternoon."
    )
    samples, sr = decode(synth(text=text))
    error = asr.wer(text, asr.transcribe(samples, sr))
    print(f"long-text WER through the API: {error:.3f}")
    assert error < 0.25


def test_streaming_sends_audio_before_synthesis_ends(synth, tenant):
    text = " ".join(
        f"This is sentence number {n}, spoken while the rest is made." for n in range(1, 9)
    )
    response = synth(text=text, mode="stream", format="pcm")
    assert response.status_code == 200 and response.streaming
    chunks = iter(response.streaming_content)
    first = next(chunks)
    job = SynthesisRequest.objects.for_tenant(tenant).get(pk=response["X-Synthesis-Id"])
    assert len(first) > 0
    assert job.status == "processing"  # the first bytes arrived while work was still going on
    rest = b"".join(chunks)
    duration = (len(first) + len(rest)) / 2 / 22050
    assert duration > 20
    job.refresh_from_db()
    assert job.status == "succeeded"


def test_concurrent_requests_get_their_own_audio(synth):
    texts = [
        "Apples and oranges are both fruit.",
        "The meeting starts at nine tomorrow morning.",
        "Purple elephants dance quietly.",
        "Please call me back when you can.",
    ]
    results: dict[int, bytes] = {}

    def run(index):
        results[index] = synth(text=texts[index]).content

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(texts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for index, text in enumerate(texts):
        samples, sr = audio.decode(results[index])
        heard = asr.transcribe(samples, sr)
        # Each clip is nearest to its own text: no clip carries another request's audio.
        errors = [asr.wer(other, heard) for other in texts]
        assert int(np.argmin(errors)) == index and errors[index] < 0.6, (text, heard)


def test_async_job_polls_downloads_and_signs_its_webhook(synth, tenant):
    received: list[tuple[dict, str]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server API
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((json.loads(body), self.headers["Timbre-Signature"], body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        response = synth(
            mode="async", format="flac", webhook_url=f"http://127.0.0.1:{server.server_port}/hook"
        )
        assert response.status_code == 202
        job_url = response["Location"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            job = synth.client.get(job_url).json()
            assert "status" in job, job
            if job["status"] in ("succeeded", "failed") and received:
                break
            time.sleep(0.2)
        assert job["status"] == "succeeded", job
        assert job["timings"]["synthesis_ms"] > 0 and job["timings"]["queue_wait_ms"] >= 0
        assert job["audio_seconds"] > 1 and job["voice"] == "stock-joe"
        redirect = synth.client.get(f"{job_url}/audio")
        assert redirect.status_code == 302
        import urllib.request

        with urllib.request.urlopen(redirect["Location"]) as download:  # noqa: S310
            samples, sr = sf.read(io.BytesIO(download.read()))
        assert sr == 22050 and len(samples) / sr == pytest.approx(job["audio_seconds"], abs=0.05)
        payload, signature, body = received[0]
        assert payload["type"] == "synthesis.succeeded" and payload["data"]["id"] == job["id"]
        timestamp = int(signature.split(",")[0][2:])
        assert signature == sign(webhook_signing_secret(tenant), body, timestamp)
    finally:
        server.shutdown()


def test_success_is_metered_and_text_is_not_kept(synth, tenant):
    response = synth(text="Metering check for the ledger.")
    job = SynthesisRequest.objects.for_tenant(tenant).get(pk=response["X-Synthesis-Id"])
    assert job.text == "" and len(job.text_sha256) == 64
    record = UsageRecord.objects.for_tenant(tenant).get(request_id=response["X-Request-Id"])
    assert record.status == "succeeded"
    assert record.characters == len("Metering check for the ledger.")
    assert record.audio_seconds == pytest.approx(job.audio_seconds)
    assert record.model_version == job.model_version
    summary = quotas.usage_summary(tenant)
    assert summary["characters_used"] == len("Metering check for the ledger.")
    assert summary["characters_reserved"] == 0


def test_bad_inputs_get_clear_4xx(synth, tenant):
    cases = [
        ({"text": ""}, 400, "text_empty"),
        ({"text": "   \n "}, 400, "text_empty"),
        ({"text": "x" * 6000}, 400, "text_too_long"),
        ({"text": "... !!! ???"}, 400, "text_unspeakable"),
        ({"text": "<speak><break time='9x'/></speak>"}, 400, "invalid_ssml"),
        ({"voice": "no-such-voice"}, 400, "unknown_voice"),
        ({"format": "aiff"}, 400, "unsupported_format"),
        ({"sample_rate": 11025}, 400, "unsupported_sample_rate"),
        ({"emotion": "sarcastic"}, 400, "invalid_control"),
        ({"speed": 3}, 400, "invalid_control"),
        ({"pitch": -7}, 400, "invalid_control"),
        ({"speeed": 1.2}, 400, "validation_error"),
        ({"mode": "later"}, 400, "validation_error"),
    ]
    for body, status, code in cases:
        payload = {"voice": "stock-joe", "text": SENTENCE, **body}
        response = synth.client.post("/api/v1/synthesize", payload, format="json")
        assert response.status_code == status, (body, response.content)
        assert response.json()["error"]["code"] == code, (body, response.json())
    emotion_error = synth(emotion="sarcastic").json()["error"]
    assert "happy" in emotion_error["details"]["allowed"]
    assert not SynthesisRequest.objects.for_tenant(tenant).exists()  # nothing was queued
    assert quotas.usage_summary(tenant)["characters_reserved"] == 0


def test_quota_exhaustion_is_429_and_nothing_runs(make_tenant, make_key, client_for, celery_worker):
    tenant = make_tenant(monthly_characters=20)
    client = client_for(make_key(tenant).token)
    response = client.post(
        "/api/v1/synthesize", {"voice": "stock-joe", "text": SENTENCE}, format="json"
    )
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "quota_exceeded"
    assert not SynthesisRequest.objects.for_tenant(tenant).exists()


def test_voices_listing_and_cross_tenant_jobs(synth, tenant, other_tenant, make_key, client_for):
    voices = synth.client.get("/api/v1/voices").json()["results"]
    joe = next(v for v in voices if v["slug"] == "stock-joe")
    assert joe["kind"] == "stock" and "whispery" in joe["capabilities"]["emotions"]
    job_id = synth(mode="async")["X-Synthesis-Id"]
    intruder = client_for(make_key(other_tenant).token)
    assert intruder.get(f"/api/v1/synthesis-requests/{job_id}").status_code == 404
    assert intruder.get(f"/api/v1/synthesis-requests/{job_id}/audio").status_code == 404
    listed = intruder.get("/api/v1/synthesis-requests").json()["results"]
    assert job_id not in {j["id"] for j in listed}


def test_openai_sdk_round_trip(live_server, tenant, make_key, celery_worker):
    from openai import OpenAI

    client = OpenAI(base_url=f"{live_server.url}/v1", api_key=make_key(tenant).token)
    assert "tts-1" in {m.id for m in client.models.list().data}
    speech = client.audio.speech.create(model="tts-1", voice="alloy", input=SENTENCE)
    samples, sr = audio.decode(speech.content)
    assert sr == 22050 and len(samples) / sr > 1.5
    with client.audio.speech.with_streaming_response.create(
        model="tts-1",
        voice="stock-joe",
        input=SENTENCE,
        response_format="wav",
        speed=1.25,
        instructions="Speak in a calm, soothing way.",
    ) as streamed:
        data = b"".join(streamed.iter_bytes())
    assert streamed.headers["x-model-version"].startswith("piper:")
    samples, sr = audio.decode(data)
    assert asr.wer(SENTENCE, asr.transcribe(samples, sr)) < 0.3
    import openai

    with pytest.raises(openai.BadRequestError) as excinfo:
        client.audio.speech.create(model="tts-1", voice="alloy", input=SENTENCE, speed=4.0)
    assert excinfo.value.body["code"] == "invalid_control"


def test_killed_worker_leaves_a_failed_job_and_a_refund(
    start_worker, tenant, make_key, client_for, settings
):
    settings.SYNTHESIS_QUEUE = "gpu-kill-test"
    worker = start_worker(queues="gpu-kill-test", concurrency=1)
    client = client_for(make_key(tenant).token)
    text = " ".join(["This long request keeps the worker busy for a while."] * 30)
    response = client.post(
        "/api/v1/synthesize", {"voice": "stock-joe", "text": text, "mode": "async"}, format="json"
    )
    job = SynthesisRequest.objects.for_tenant(tenant).get(pk=response.json()["id"])
    deadline = time.monotonic() + 60
    while job.status != "processing" and time.monotonic() < deadline:
        time.sleep(0.1)
        job.refresh_from_db()
    assert job.status == "processing"
    for pid in worker.child_pids():
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while job.status == "processing" and time.monotonic() < deadline:
        time.sleep(0.2)
        job.refresh_from_db()
    assert job.status == "failed" and job.error_code == "worker_lost", job.error_code
    counter = QuotaCounter.objects.for_tenant(tenant).get(scope="tenant", metric="characters")
    assert counter.reserved == 0 and counter.used == 0
    assert UsageRecord.objects.for_tenant(tenant).get(request_id=job.request_id).status == "failed"
