"""A running fine-tune on a real worker can be cancelled, and one that overruns its hard time
limit fails; neither counts against the plan nor leaves a version behind."""

from __future__ import annotations

import time

import pytest

from core.storage import get_storage, tenant_key
from speech import audio
from speech.testing import talents as T
from tenancy.services import quotas
from voices.models import FineTuneJob, TrainingRecording, Voice, VoiceVersion
from voices.tests.journey import DEV, SR, poll, take, verified_voice_rows

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _with_real_audio(tenant) -> Voice:
    """Accepted recordings as a check leaves them: processed WAVs in storage."""
    voice = verified_voice_rows(tenant, recordings=0)
    rows = []
    for i, text in enumerate(T.TRAIN_SENTENCES[:8]):
        rec = TrainingRecording(
            tenant=tenant,
            voice=voice,
            filename=f"{i}.wav",
            transcript=text,
            status=TrainingRecording.Status.ACCEPTED,
        )
        rec.audio_key = tenant_key(tenant.pk, "voices", str(voice.pk), "recordings", f"{i}.wav")
        get_storage().put(rec.audio_key, audio.encode(take(DEV, text), SR, "wav"))
        rows.append(rec)
    TrainingRecording.objects.for_tenant(tenant).bulk_create(rows)
    return voice


def test_a_running_fine_tune_is_cancelled(tenant, make_key, client_for, celery_worker):
    client = client_for(make_key(tenant).token)
    _with_real_audio(tenant)
    started = client.post("/api/v1/voices/dana/fine-tunes", {"steps": 5000}, format="json")
    assert started.status_code == 202, started.content
    url = f"/api/v1/fine-tunes/{started.json()['id']}"
    poll(client, url, lambda j: j["progress"]["phase"] == "train" and j["progress"]["step"] > 0)
    cancelled = client.post(f"{url}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    time.sleep(5)  # the worker notices within about a second and publishes nothing
    job = client.get(url).json()
    assert job["status"] == "cancelled" and job["version"] is None
    assert not VoiceVersion.objects.for_tenant(tenant).exists()
    assert Voice.objects.for_tenant(tenant).get(slug="dana").status == Voice.Status.DRAFT
    assert quotas.held(tenant, quotas.FINE_TUNES)["used"] == 0
    assert client.post(f"{url}/cancel").status_code == 409


def test_an_overrunning_fine_tune_hits_its_time_limit(
    tenant, make_key, client_for, start_worker, settings
):
    # A worker of its own, whose time limit is 5 s; the session worker never sees this job.
    start_worker(queues="ft-limited", FINE_TUNE_TIME_LIMIT_S="5")
    client = client_for(make_key(tenant).token)
    _with_real_audio(tenant)
    settings.FINE_TUNE_QUEUE = "ft-limited"
    started = client.post("/api/v1/voices/dana/fine-tunes", {"steps": 5000}, format="json")
    url = f"/api/v1/fine-tunes/{started.json()['id']}"
    job = poll(client, url, lambda j: j["status"] not in ("queued", "running"), timeout=120)
    assert job["status"] == "failed" and job["error_code"] == "fine_tune_timeout", job
    assert "5 s" in job["error_message"]
    assert FineTuneJob.objects.for_tenant(tenant).get().reservation.status == "refunded"
    assert not VoiceVersion.objects.for_tenant(tenant).exists()
