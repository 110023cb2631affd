"""A sync request's result handed from the worker to the waiting web process: the `end`
message carries the request's final fields and the stored clip, so the web process answers
without reloading the row or reading the object back; large clips are read back instead.
Real worker processes, real Piper audio, real S3 (moto) and PostgreSQL."""

from __future__ import annotations

import uuid

import pytest

from core.storage import get_storage
from synthesis import services
from synthesis.models import SynthesisRequest
from synthesis.services.pipeline import ANNOUNCED_FIELDS
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
