"""No worker answers: the web process gives up, answers 504 in the error shape, and fails and
refunds the request, in sync and stream mode alike (and through the OpenAI-compatible API)."""

from __future__ import annotations

import pytest

from synthesis.models import SynthesisRequest
from tenancy.models import QuotaCounter, UsageRecord

pytestmark = pytest.mark.django_db


@pytest.fixture
def no_worker(settings):
    # A queue nobody consumes, and a short wait.
    settings.SYNTHESIS_QUEUE = "gpu-nobody-listens"
    settings.SYNTHESIS_SYNC_TIMEOUT_S = 1


def assert_timed_out(response, tenant):
    assert response.status_code == 504, response.content
    error = response.json()["error"]
    assert error["code"] == "synthesis_timeout"
    assert error["message"] and error["request_id"] == response["X-Request-Id"]
    job = SynthesisRequest.objects.for_tenant(tenant).get(request_id=error["request_id"])
    assert job.status == "failed" and job.error_code == "synthesis_timeout"
    for counter in QuotaCounter.objects.for_tenant(tenant):
        assert counter.reserved == 0 and counter.used == 0, counter.metric
    assert UsageRecord.objects.for_tenant(tenant).get(request_id=job.request_id).status == "failed"


@pytest.mark.parametrize("mode", ["sync", "stream"])
def test_native_request_times_out_with_504_and_a_refund(no_worker, api, tenant, mode):
    response = api.post(
        "/api/v1/synthesize",
        {"voice": "stock-joe", "text": "Is anyone there?", "mode": mode},
        format="json",
    )
    assert_timed_out(response, tenant)


def test_openai_speech_times_out_with_504_and_a_refund(no_worker, api, tenant):
    response = api.post(
        "/v1/audio/speech",
        {"model": "tts-1", "voice": "alloy", "input": "Is anyone there?"},
        format="json",
    )
    assert_timed_out(response, tenant)
