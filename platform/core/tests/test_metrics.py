"""Prometheus metrics: the web /metrics after a real synthesis, its labels and token, and a
real worker's own endpoint (prefork children recording through the multiprocess directory)."""

from __future__ import annotations

import re
import urllib.request
import uuid

import pytest
import redis
from django.test import override_settings

from synthesis.services import pipeline

pytestmark = pytest.mark.django_db(transaction=True)

SENTENCE = "Metrics are counted where the request ends."


def sample(text: str, name: str, **labels) -> float | None:
    """The value of the series ``name`` whose labels include ``labels``."""
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if not match:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match[1]))
        if all(found.get(k) == str(v) for k, v in labels.items()):
            return float(match[2])
    return None


QUEUE = f"metrics-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def queued(tenant, make_key, client_for, settings):
    """A real async request, left on a queue no worker consumes, so this process runs it."""
    settings.SYNTHESIS_QUEUE = QUEUE
    client = client_for(make_key(tenant, scopes=["synthesize"]).token)
    response = client.post(
        "/api/v1/synthesize",
        {"voice": "stock-joe", "text": SENTENCE, "mode": "async"},
        format="json",
    )
    assert response.status_code == 202, response.content
    yield response["X-Synthesis-Id"], response["X-Model-Version"]
    prefix = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("global_keyprefix", "")
    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(prefix + QUEUE)


def scrape(client, **headers) -> str:
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return response.content.decode()


def test_metrics_after_a_real_synthesis(client, queued, tenant):
    job_id, version = queued
    before = scrape(client)
    assert sample(before, "timbre_queue_depth", queue=QUEUE) == 1

    pipeline.run(job_id)  # the worker pipeline, in this process: the counters are ours

    text = scrape(client)
    labels = dict(model_version=version, family="stock", tenant_class="business", arm="")
    assert sample(text, "timbre_synthesis_requests_total", **labels, status="succeeded") >= 1
    assert sample(text, "timbre_synthesis_latency_per_char_seconds_count", **labels) >= 1
    assert sample(text, "timbre_synthesis_rtf_count", **labels) >= 1
    assert sample(text, "timbre_synthesis_latency_seconds_bucket", **labels, le="+Inf") >= 1
    assert str(tenant.pk) not in text and tenant.slug not in text  # plan, never the tenant


def test_raw_tenant_ids_only_when_configured(client, queued, tenant):
    job_id, version = queued
    with override_settings(METRICS_TENANT_LABEL="id"):
        pipeline.run(job_id)
    text = scrape(client)
    assert sample(text, "timbre_synthesis_requests_total", tenant_class=str(tenant.pk)) >= 1


def test_quality_scores_and_rollout_state(client):
    from core import metrics

    metrics.record_quality("piper:q@1", "voice:0f3c", "pro", wer=0.04, mos=3.9, similarity=0.8)
    text = scrape(client)
    labels = dict(model_version="piper:q@1", family="voice", tenant_class="pro")
    for name in ("timbre_quality_wer", "timbre_quality_mos", "timbre_quality_similarity"):
        assert sample(text, f"{name}_count", **labels) >= 1
    assert "0f3c" not in text  # the voice id is not a label
    assert "# TYPE timbre_rollout_percent gauge" in text


@override_settings(METRICS_TOKEN="metrics-token-123")
def test_a_configured_token_is_required(client):
    response = client.get("/metrics")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert "timbre_queue_depth" in scrape(client, HTTP_AUTHORIZATION="Bearer metrics-token-123")


@pytest.mark.worker
def test_a_worker_serves_its_metrics(
    start_worker, tmp_path, tenant, make_key, client_for, settings
):
    from tests.fixtures import free_port, wait_for_port

    port = free_port()
    settings.SYNTHESIS_QUEUE = QUEUE  # this worker's own queue: no other worker serves it
    start_worker(
        QUEUE,
        concurrency=2,
        SYNTHESIS_QUEUE=QUEUE,
        WORKER_METRICS_PORT=str(port),
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path),
        ENGINE_SYNC_INTERVAL_S="1",
    )
    wait_for_port(port)
    client = client_for(make_key(tenant, scopes=["synthesize"]).token)
    response = client.post(
        "/api/v1/synthesize", {"voice": "stock-joe", "text": SENTENCE}, format="json"
    )
    assert response.status_code == 200, response.content[:300]
    version = response["X-Model-Version"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    # Recorded by a prefork child, served by the worker's main process.
    assert sample(text, "timbre_synthesis_requests_total", model_version=version) >= 1
    assert sample(text, "timbre_engine_loaded", model_version=version) == 1
    budgets = re.findall(r"^timbre_engine_memory_budget_bytes\{.*\} (\S+)$", text, re.M)
    assert max(float(v) for v in budgets) > 0  # the children's (the parent's own stays 0)
    assert "timbre_queue_depth" not in text  # scrape-time state comes from the web app only
