"""The sync path's hand-offs. The worker marks the audio sentence by sentence while the engine
makes the next one, and gets the clip whole-clip marking gives. The worker hands the result to
the waiting web process: the `end` message carries the request's final fields and the stored
clip, so the web process answers without reloading the row or reading the object back; large
clips are read back instead. Real worker processes, real Piper audio, real S3 (moto) and
PostgreSQL."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from core.storage import get_storage
from speech import dsp, text
from speech.engines.base import SynthesisControls, iter_synthesis
from speech.engines.piper_engine import PiperEngine
from synthesis import services, watermarking
from synthesis.models import SynthesisRequest
from synthesis.services.pipeline import ANNOUNCED_FIELDS, CROSSFADE_MS, _MarkAhead
from tenancy.models import QuotaReservation, UsageRecord

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

TEXT = "Your table for two is ready."


def submit(tenant, request_id: str) -> SynthesisRequest:
    return services.submit(
        tenant, None, services.SynthesisParams(voice="stock-joe", text=TEXT), request_id
    )


def assert_delivered_as_stored(tenant, job, request_id):
    """The delivery is stored, watermarked, charged and ledgered, as every delivery is."""
    row = SynthesisRequest.objects.for_tenant(tenant).get(pk=job.pk)
    assert row.status == "succeeded" and row.watermark_payload
    assert {name: getattr(job, name) for name in ANNOUNCED_FIELDS} == {
        name: getattr(row, name) for name in ANNOUNCED_FIELDS
    }
    settled = QuotaReservation.objects.for_tenant(tenant).filter(
        pk__in=[row.character_reservation_id, row.slot_reservation_id]
    )
    assert {r.status for r in settled} == {"committed"}
    record = UsageRecord.objects.for_tenant(tenant).get(request_id=request_id)
    assert record.status == "succeeded" and record.characters == len(TEXT)
    return get_storage().get(row.audio_key)


def test_the_worker_hands_the_stored_clip_and_fields_to_the_waiting_request(
    celery_worker, tenant, make_key, client_for
):
    request_id = f"handoff-{uuid.uuid4().hex[:8]}"
    job, audio = services.wait_for_result(submit(tenant, request_id))
    assert job.status == "succeeded"
    assert audio is not None  # no read back from storage
    assert audio == assert_delivered_as_stored(tenant, job, request_id)

    client = client_for(make_key(tenant, scopes=["synthesize"]).token)
    response = client.post(
        "/api/v1/synthesize", {"voice": "stock-joe", "text": TEXT}, format="json"
    )
    assert response.status_code == 200 and response["X-Prompt-Cache"] in ("hit", "miss")
    job = SynthesisRequest.objects.for_tenant(tenant).get(pk=response["X-Synthesis-Id"])
    assert response.content == get_storage().get(job.audio_key)
    assert float(response["X-Audio-Duration"]) == job.audio_seconds


def test_a_clip_over_the_inline_limit_is_read_back_from_storage(
    start_worker, settings, tenant, make_key, client_for
):
    queue = f"handoff-{uuid.uuid4().hex[:8]}"
    settings.SYNTHESIS_QUEUE = queue  # this worker's own queue: no other worker serves it
    start_worker(queue, SYNTHESIS_QUEUE=queue, SYNTHESIS_INLINE_AUDIO_MAX_BYTES="1000")
    request_id = f"handoff-{uuid.uuid4().hex[:8]}"
    job, audio = services.wait_for_result(submit(tenant, request_id))
    assert job.status == "succeeded" and audio is None
    stored = assert_delivered_as_stored(tenant, job, request_id)

    client = client_for(make_key(tenant, scopes=["synthesize"]).token)
    response = client.post(
        "/api/v1/synthesize", {"voice": "stock-joe", "text": TEXT}, format="json"
    )
    assert response.status_code == 200
    job = SynthesisRequest.objects.for_tenant(tenant).get(pk=response["X-Synthesis-Id"])
    assert response.content == get_storage().get(job.audio_key)
    assert len(stored) > 1000 and response["X-Characters-Billed"] == str(len(TEXT))


def test_marking_ahead_gives_the_whole_clip_mark():
    """Sentence by sentence on the marking thread, as the worker does for a sync request: the
    same samples (to float rounding) and the same recorded payload as marking the joined clip."""
    engine = PiperEngine()
    engine.load()
    try:
        segments = text.prepare("Thanks for calling. How can I help you today? Goodbye for now.")
        chunks = list(iter_synthesis(engine, segments, SynthesisControls()))
        sr = engine.sample_rate
    finally:
        engine.close()
    assert len(chunks) >= 3
    ahead_job, whole_job = (SynthesisRequest(id=uuid.UUID(int=7)) for _ in range(2))
    ahead = _MarkAhead(ahead_job, sr)
    for samples, pause_ms in chunks:
        ahead.add(samples, pause_ms)
    marked = ahead.finish()
    clip = dsp.crossfade_join([c for c, _ in chunks], sr, CROSSFADE_MS, [p for _, p in chunks])
    whole = watermarking.watermark_clip(whole_job, clip, sr)
    assert len(marked) == len(clip) == len(whole)
    assert np.max(np.abs(marked - whole)) < 1e-4
    assert ahead_job.watermark_payload == whole_job.watermark_payload != ""
    backend, detection = watermarking.detect_samples(marked, sr)
    assert detection.verdict == "watermarked"
    assert detection.payload.hex() == ahead_job.watermark_payload
