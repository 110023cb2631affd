"""Every clip is watermarked; detection traces it to its request for the owning tenant only."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
import soundfile as sf
from django.core.files.uploadedfile import SimpleUploadedFile

from audit.models import AuditEvent
from synthesis import watermarking
from synthesis.models import SynthesisRequest
from tenancy.services import quotas

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

TEXT = "Your verification code is four two seven nine. It expires in ten minutes."


@pytest.fixture
def synthesize(celery_worker, make_key, client_for):
    def run(tenant, fmt="wav", text=TEXT):
        client = client_for(make_key(tenant, scopes=["synthesize"]).token)
        response = client.post(
            "/api/v1/synthesize", {"voice": "stock-joe", "text": text, "format": fmt}, format="json"
        )
        assert response.status_code == 200, response.content[:300]
        return response

    return run


@pytest.fixture
def auditor(make_key, client_for):
    def make(tenant):
        client = client_for(make_key(tenant, scopes=["audit:read"]).token)

        def detect(data: bytes, name: str = "clip.bin"):
            return client.post(
                "/api/v1/watermark/detect",
                {"file": SimpleUploadedFile(name, data)},
                format="multipart",
            )

        return detect

    return make


def wav_bytes(samples: np.ndarray, sr: int) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, sr, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["wav", "mp3", "ogg", "opus", "flac"])
def test_round_trip_traces_the_clip_to_its_request(synthesize, auditor, tenant, fmt):
    response = synthesize(tenant, fmt)
    job = SynthesisRequest.objects.for_tenant(tenant).get(pk=response["X-Synthesis-Id"])
    assert job.watermark_backend == "timbre-ss" and len(job.watermark_payload) == 10
    result = auditor(tenant)(response.content, f"leak.{fmt}").json()
    assert result["verdict"] == "watermarked", result
    request = result["request"]
    assert request["id"] == str(job.pk) and request["request_id"] == response["X-Request-Id"]
    assert request["voice"] == "stock-joe" and request["model_version"] == job.model_version
    assert request["api_key"].endswith(job.api_key.last4) and "…" in request["api_key"]
    assert request["text_sha256"] == job.text_sha256 and request["tenant"] == tenant.slug
    event = AuditEvent.objects.for_tenant(tenant).filter(action="watermark.detect").last()
    assert event.target_id == str(job.pk) and event.after["verdict"] == "watermarked"


def test_another_tenants_clip_reveals_only_that_it_is_timbres(
    synthesize, auditor, tenant, other_tenant
):
    response = synthesize(tenant)
    result = auditor(other_tenant)(response.content).json()
    assert result["verdict"] == "watermarked" and result["owner"] == "another_tenant"
    assert "request" not in result and str(tenant.pk) not in str(result)
    assert tenant.slug not in str(result)


def test_unmarked_silent_and_short_clips(auditor, tenant, celery_worker):
    detect = auditor(tenant)
    sr = 22050
    rng = np.random.default_rng(1)
    noise = (0.05 * rng.standard_normal(sr * 4)).astype(np.float32)
    assert detect(wav_bytes(noise, sr)).json()["verdict"] == "not_detected"
    silent = detect(wav_bytes(np.zeros(sr * 3, np.float32), sr)).json()
    assert silent["verdict"] == "inconclusive" and silent["reason"]
    short = detect(wav_bytes(noise[: int(sr * 0.3)], sr)).json()
    assert short["verdict"] == "inconclusive" and short["reason"]


def test_detection_needs_audit_scope_and_valid_audio(
    auditor, tenant, make_key, client_for, settings
):
    synth_only = client_for(make_key(tenant, scopes=["synthesize"]).token)
    response = synth_only.post(
        "/api/v1/watermark/detect",
        {"file": SimpleUploadedFile("a.wav", b"RIFF")},
        format="multipart",
    )
    assert response.status_code == 403
    detect = auditor(tenant)
    for data, code in [
        (b"", "audio_empty"),
        (b"not audio at all" * 100, "audio_unsupported_format"),
        (b"RIFF\x00\x00\x00\x00WAVEfmt garbage", "audio_corrupt"),
    ]:
        body = detect(data).json()["error"]
        assert body["code"] in {
            code,
            "audio_corrupt",
            "audio_unsupported_format",
            "file_required",
            "audio_empty",
        }, body
    settings.WATERMARK_DETECT_MAX_BYTES = 1000
    too_big = detect(b"x" * 5000)
    assert too_big.status_code == 413 and too_big.json()["error"]["code"] == "audio_too_large"


def test_rotated_keys_still_detect_old_clips(synthesize, auditor, tenant, settings):
    response = synthesize(tenant)
    old_key = watermarking.current_key()[1]
    new_key = b"n" * 32
    settings.WATERMARK_KEYS = (
        f"k2026:{base64.b64encode(new_key).decode()},dev:{base64.b64encode(old_key).decode()}"
    )
    watermarking.keys.cache_clear()
    try:
        assert watermarking.current_key()[0] == "k2026"
        result = auditor(tenant)(response.content).json()
        assert result["verdict"] == "watermarked" and result["request"]["key_id"] == "dev"
    finally:
        watermarking.keys.cache_clear()


def test_embedding_failure_fails_closed_and_refunds(
    start_worker, tenant, make_key, client_for, settings
):
    # A worker whose only configured backend is unusable here (no audiowmark binary).
    settings.SYNTHESIS_QUEUE = "gpu-failclosed-test"
    start_worker(queues="gpu-failclosed-test", WATERMARK_BACKENDS="audiowmark")
    client = client_for(make_key(tenant).token)
    response = client.post(
        "/api/v1/synthesize", {"voice": "stock-joe", "text": TEXT}, format="json"
    )
    assert response.status_code == 422
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "watermark_failed"
    job = SynthesisRequest.objects.for_tenant(tenant).get()
    assert job.status == "failed" and job.audio_key == "" and job.audio_bytes == 0
    summary = quotas.usage_summary(tenant)
    assert summary["characters_used"] == 0 and summary["characters_reserved"] == 0


def test_payload_collisions_are_reported_as_ambiguous(synthesize, auditor, tenant, other_tenant):
    response = synthesize(tenant)
    job = SynthesisRequest.objects.for_tenant(tenant).get(pk=response["X-Synthesis-Id"])
    # Another request that happens to carry the same 40-bit payload.
    twin = SynthesisRequest.objects.for_tenant(other_tenant).create(
        tenant=other_tenant,
        request_id="req-twin",
        voice=job.voice,
        voice_slug="stock-joe",
        model_version=job.model_version,
        text_sha256="0" * 64,
        characters=1,
        format="wav",
        sample_rate=0,
        mode="sync",
        status="succeeded",
        watermark_backend=job.watermark_backend,
        watermark_key_id=job.watermark_key_id,
        watermark_payload=job.watermark_payload,
    )
    result = auditor(tenant)(response.content).json()
    assert result["verdict"] == "watermarked" and result["ambiguous"] is True
    assert [c["id"] for c in result["candidates"]] == [str(job.pk)]
    assert str(twin.pk) not in str(result) and "req-twin" not in str(result)


def test_very_short_outputs_are_delivered_marked_best_effort(synthesize, auditor, tenant):
    # "Yes." is about half a second: too short for the payload to be recoverable, but the
    # platform still marks what it can rather than refuse ordinary short prompts.
    response = synthesize(tenant, text="Yes.")
    job = SynthesisRequest.objects.for_tenant(tenant).get(pk=response["X-Synthesis-Id"])
    assert job.status == "succeeded" and job.watermark_payload
    result = auditor(tenant)(response.content).json()
    assert result["verdict"] == "inconclusive" and "short" in result["reason"]


LONG_TEXT = " ".join(
    f"This is sentence number {n} of a long announcement, streamed as it is made."
    for n in range(1, 7)
)


@pytest.mark.parametrize("fmt", ["pcm", "ogg"])
def test_every_streamed_byte_carries_the_mark(
    celery_worker, make_key, client_for, auditor, tenant, fmt
):
    """Record every byte a streaming client receives: the whole of it, and its first piece on
    its own, trace back to the request; and what was stored is what was sent."""
    from core.storage import get_storage

    client = client_for(make_key(tenant, scopes=["synthesize"]).token)
    response = client.post(
        "/api/v1/synthesize",
        {"voice": "stock-joe", "text": LONG_TEXT, "format": fmt, "mode": "stream"},
        format="json",
    )
    assert response.status_code == 200 and response.streaming
    received = [bytes(chunk) for chunk in response.streaming_content]
    job = SynthesisRequest.objects.for_tenant(tenant).get(pk=response["X-Synthesis-Id"])
    assert job.status == "succeeded" and job.watermark_backend == "timbre-ss"
    assert len(received) > 2  # really streamed in pieces
    everything = b"".join(received)

    def wav_of(data: bytes) -> bytes:
        if fmt == "pcm":
            return wav_bytes(np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768, 22050)
        return data

    detect = auditor(tenant)
    result = detect(wav_of(everything), f"stream.{'wav' if fmt == 'pcm' else fmt}").json()
    assert result["verdict"] == "watermarked", result
    assert result["request"]["id"] == str(job.pk)
    if fmt == "pcm":
        # The first piece the engine produced (the first sentence, ~3 s) is marked on its own.
        first = received[0]
        assert len(first) / 2 / 22050 > 2.0
        head = detect(wav_of(first), "first-piece.wav").json()
        assert head["verdict"] == "watermarked" and head["request"]["id"] == str(job.pk), head
        # The stored clip is the audio that was sent, not a second marking of it.
        assert get_storage().get(job.audio_key) == everything
