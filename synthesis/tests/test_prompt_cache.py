"""The repeat-prompt cache: a repeated request skips the engine, yet every delivery is marked
with its own payload, charged and recorded; nothing is shared across tenants or survives a
revoked consent or a retired version."""

from __future__ import annotations

import uuid
from types import SimpleNamespace

import numpy as np
import pytest

from speech import text as speech_text
from synthesis import watermarking
from synthesis.models import SynthesisRequest
from synthesis.services import prompt_cache
from tenancy.models import UsageRecord
from tenancy.services import quotas

PROMPT = "Thank you for calling Acme. Your call may be recorded for quality purposes."


@pytest.fixture
def cache_on(settings):
    settings.PROMPT_CACHE_ENABLED = True


def fake_job(tenant_id="t1", voice_id="v1", model_version="piper:m@1", controls=None):
    return SimpleNamespace(
        tenant_id=tenant_id, voice_id=voice_id, model_version=model_version, controls=controls
    )


def cached(job, segments):
    return prompt_cache.lookup(prompt_cache.key_for(job, segments))


def keep(job, segments, clip, sr):
    return prompt_cache.store(prompt_cache.key_for(job, segments), job.tenant_id, clip, sr)


def tone(seconds: float, sr: int = 22050) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)


def test_entries_are_per_tenant_voice_version_text_and_controls(cache_on):
    segments = speech_text.prepare(PROMPT)
    job = fake_job()
    assert cached(job, segments) is None
    assert keep(job, segments, tone(2.0), 22050)
    clip, sr = cached(job, segments)
    assert sr == 22050 and np.max(np.abs(clip - tone(2.0))) < 1e-4  # 16-bit PCM
    for other in (
        fake_job(tenant_id="t2"),
        fake_job(voice_id="v2"),
        fake_job(model_version="piper:m@2"),
        fake_job(controls={"speed": 1.2}),
    ):
        assert cached(other, segments) is None
    assert cached(job, speech_text.prepare(PROMPT + " Goodbye.")) is None


def test_forgetting_a_voice_or_a_version_empties_it(cache_on):
    segments = speech_text.prepare(PROMPT)
    job = fake_job()
    keep(job, segments, tone(1.0), 22050)
    prompt_cache.forget_voice("v1")
    assert cached(job, segments) is None
    keep(job, segments, tone(1.0), 22050)
    prompt_cache.forget_version("piper:m@1")
    assert cached(job, segments) is None


def test_long_clips_and_a_full_share_are_not_kept_and_the_switch_turns_it_off(cache_on, settings):
    segments = speech_text.prepare(PROMPT)
    settings.PROMPT_CACHE_MAX_SECONDS = 1
    assert not keep(fake_job(), segments, tone(1.5), 22050)
    settings.PROMPT_CACHE_MAX_SECONDS = 30
    settings.PROMPT_CACHE_MAX_ENTRIES = 2
    stored = [
        keep(fake_job(), speech_text.prepare(f"{PROMPT} {n}."), tone(1.0), 22050) for n in range(3)
    ]
    assert stored == [True, True, False]  # the tenant's share is bounded
    assert keep(fake_job(tenant_id="t2"), segments, tone(1.0), 22050)
    settings.PROMPT_CACHE_ENABLED = False
    assert cached(fake_job(), segments) is None


@pytest.mark.django_db
def test_revoking_consent_forgets_the_voice(tenant, cache_on):
    from consent import services as consent_services
    from consent.models import ConsentRecord
    from frontend.tests.test_voices import draft_voice, statement
    from tenancy.services.access import Access

    voice = draft_voice(tenant)
    consent = statement(tenant, voice, status=ConsentRecord.Status.VERIFIED)
    voice.consent = consent
    voice.save(update_fields=["consent"])
    job = fake_job(tenant_id=tenant.pk, voice_id=voice.pk)
    segments = speech_text.prepare(PROMPT)
    keep(job, segments, tone(1.0), 22050)
    consent_services.revoke(Access.operator(tenant), consent, reason="The talent asked.")
    assert cached(job, segments) is None


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_repeated_prompt_skips_the_engine_but_is_marked_charged_and_recorded(
    start_worker, settings, tenant, other_tenant, make_key, client_for
):
    queue = f"prompt-cache-{uuid.uuid4().hex[:8]}"
    settings.SYNTHESIS_QUEUE = queue  # this worker's own queue: no other worker serves it
    start_worker(queue, SYNTHESIS_QUEUE=queue, PROMPT_CACHE_ENABLED="1")
    client = client_for(make_key(tenant, scopes=["synthesize"]).token)

    def say(api=client, **extra):
        body = {"voice": "stock-joe", "text": PROMPT, "format": "wav", **extra}
        response = api.post("/api/v1/synthesize", body, format="json")
        assert response.status_code == 200, response.content[:300]
        return response

    first, second = say(), say()
    assert first["X-Prompt-Cache"] == "miss" and second["X-Prompt-Cache"] == "hit"
    jobs = {
        job.request_id: job
        for job in SynthesisRequest.objects.for_tenant(tenant).filter(
            request_id__in=[first["X-Request-Id"], second["X-Request-Id"]]
        )
    }
    hit = jobs[second["X-Request-Id"]]
    assert hit.prompt_cache_hit and hit.synthesis_ms is None  # no latency sample for guardrails
    # Each delivery carries its own mark, traced to its own request.
    for response in (first, second):
        traced = watermarking.identify(tenant, response.content)
        assert traced["verdict"] == "watermarked"
        assert traced["request"]["request_id"] == response["X-Request-Id"]
    assert jobs[first["X-Request-Id"]].watermark_payload != hit.watermark_payload
    # ...and is charged and recorded like any other.
    assert UsageRecord.objects.for_tenant(tenant).count() == 2
    assert quotas.usage_summary(tenant)["characters_used"] == 2 * len(PROMPT)
    # Other controls, or another tenant, make their own audio.
    assert say(speed=1.2)["X-Prompt-Cache"] == "miss"
    other = client_for(make_key(other_tenant, scopes=["synthesize"]).token)
    assert say(api=other)["X-Prompt-Cache"] == "miss"
    # Streaming a cached prompt sends marked audio too.
    streamed = client.post(
        "/api/v1/synthesize",
        {"voice": "stock-joe", "text": PROMPT, "format": "wav", "mode": "stream"},
        format="json",
    )
    audio_bytes = b"".join(streamed.streaming_content)
    assert watermarking.identify(tenant, audio_bytes)["verdict"] == "watermarked"
