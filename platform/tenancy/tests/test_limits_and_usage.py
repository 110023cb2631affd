"""Rate limits (django-ratelimit on Redis), quota reservations under real concurrency against
PostgreSQL, refunds, the usage ledger and its API."""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from tenancy.models import QuotaCounter, QuotaReservation
from tenancy.services import quotas, usage
from tenancy.services.errors import QuotaExceeded


@pytest.mark.django_db
def test_rate_limit_headers_and_429(make_tenant, make_key, client_for):
    tenant = make_tenant(requests_per_minute_per_key=3, requests_per_minute_per_tenant=100)
    client = client_for(make_key(tenant).token)
    first = client.get("/api/v1/tenant")
    assert first["RateLimit-Limit"] == "3" and first["RateLimit-Remaining"] == "2"
    assert int(first["RateLimit-Reset"]) >= 1
    client.get("/api/v1/tenant")
    client.get("/api/v1/tenant")
    limited = client.get("/api/v1/tenant")
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limited"
    assert limited.json()["error"]["request_id"] == limited["X-Request-Id"]
    assert 1 <= int(limited["Retry-After"]) <= 60
    assert limited["RateLimit-Remaining"] == "0"


@pytest.mark.django_db
def test_tenant_wide_rate_limit_spans_keys(make_tenant, make_key, client_for):
    tenant = make_tenant(requests_per_minute_per_key=100, requests_per_minute_per_tenant=4)
    a, b = client_for(make_key(tenant).token), client_for(make_key(tenant).token)
    statuses = [c.get("/api/v1/tenant").status_code for c in (a, b, a, b, a, b)]
    assert statuses == [200, 200, 200, 200, 429, 429]


@pytest.mark.django_db(transaction=True)
def test_quota_never_overspends_under_concurrency(make_tenant):
    # 4N threads, each with its own PostgreSQL connection (kept well under max_connections).
    limit = 12
    tenant = make_tenant(monthly_characters=limit)
    results: list[str] = []
    barrier = threading.Barrier(4 * limit)

    def worker():
        try:
            barrier.wait()
            quotas.reserve(tenant, None, 1)
            results.append("ok")
        except QuotaExceeded:
            results.append("exceeded")
        except Exception as exc:  # noqa: BLE001 - any other error must fail the assertion
            results.append(repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4 * limit)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(set(results)) == ["exceeded", "ok"], set(results)
    assert results.count("ok") == limit
    assert results.count("exceeded") == 3 * limit
    counter = QuotaCounter.objects.for_tenant(tenant).get(scope="tenant", metric="characters")
    assert counter.reserved == limit and counter.used == 0


@pytest.mark.django_db(transaction=True)
def test_mixed_sizes_under_concurrency_never_exceed_limit(make_tenant):
    limit = 100
    tenant = make_tenant(monthly_characters=limit)
    granted: list[int] = []
    barrier = threading.Barrier(30)

    def worker(amount):
        try:
            barrier.wait()
            reservation = quotas.reserve(tenant, None, amount)
            quotas.commit(reservation)
            granted.append(amount)
        except QuotaExceeded:
            pass
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(3 + i % 7,)) for i in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    counter = QuotaCounter.objects.for_tenant(tenant).get(scope="tenant", metric="characters")
    assert counter.used == sum(granted) <= limit and counter.reserved == 0
    assert sum(granted) > limit - 10  # it was not refusing needlessly


@pytest.mark.django_db
def test_commit_refund_and_idempotency(make_tenant):
    tenant = make_tenant(monthly_characters=100)
    first = quotas.reserve(tenant, None, 60)
    with pytest.raises(QuotaExceeded) as excinfo:
        quotas.reserve(tenant, None, 50)
    assert excinfo.value.status_code == 429 and excinfo.value.error_code == "quota_exceeded"
    assert quotas.refund(first) is True
    assert quotas.refund(first) is False  # a second refund changes nothing
    assert quotas.commit(first) is False  # nor can a refunded reservation be committed
    second = quotas.reserve(tenant, None, 90)
    assert quotas.commit(second, actual=80) is True
    summary = quotas.usage_summary(tenant)
    assert summary["characters_used"] == 80 and summary["characters_remaining"] == 20


@pytest.mark.django_db
def test_per_key_budget_is_lower_than_tenant(make_tenant, make_key):
    tenant = make_tenant(monthly_characters=1000)
    key = make_key(tenant, monthly_character_limit=10).key
    quotas.commit(quotas.reserve(tenant, key, 10))
    with pytest.raises(QuotaExceeded, match="API key"):
        quotas.reserve(tenant, key, 1)
    quotas.reserve(tenant, None, 500)  # the tenant itself still has room


@pytest.mark.django_db
def test_concurrency_slots(make_tenant):
    tenant = make_tenant(concurrent_jobs=2)
    slots = [quotas.reserve(tenant, None, 1, quotas.CONCURRENT_JOBS) for _ in range(2)]
    with pytest.raises(QuotaExceeded) as excinfo:
        quotas.reserve(tenant, None, 1, quotas.CONCURRENT_JOBS)
    assert excinfo.value.error_code == "concurrency_limit_exceeded"
    quotas.commit(slots[0])
    quotas.reserve(tenant, None, 1, quotas.CONCURRENT_JOBS)


@pytest.mark.django_db
def test_stale_reservations_are_refunded(make_tenant):
    tenant = make_tenant(monthly_characters=100)
    stale = quotas.reserve(tenant, None, 70)
    QuotaReservation.objects.for_tenant(tenant).filter(pk=stale.pk).update(
        created_at=timezone.now() - timedelta(hours=2)
    )
    fresh = quotas.reserve(tenant, None, 10)
    assert quotas.refund_stale_reservations() == 1
    assert quotas.usage_summary(tenant)["characters_reserved"] == 10
    assert QuotaReservation.objects.for_tenant(tenant).get(pk=fresh.pk).status == "reserved"


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_housekeeping_task_runs_on_a_real_worker(celery_worker, make_tenant):
    from tenancy.tasks import refund_stale_reservations

    tenant = make_tenant(monthly_characters=100)
    stale = quotas.reserve(tenant, None, 40)
    QuotaReservation.objects.for_tenant(tenant).filter(pk=stale.pk).update(
        created_at=timezone.now() - timedelta(hours=2)
    )
    refund_stale_reservations.delay()
    deadline = timezone.now() + timedelta(seconds=30)
    while timezone.now() < deadline:
        if QuotaReservation.objects.for_tenant(tenant).get(pk=stale.pk).status == "refunded":
            break
        time.sleep(0.2)
    assert QuotaReservation.objects.for_tenant(tenant).get(pk=stale.pk).status == "refunded"


@pytest.mark.django_db
def test_usage_api_groups_and_exports_csv(tenant, make_key, client_for):
    key_a, key_b = make_key(tenant, name="a").key, make_key(tenant, name="b").key
    for key, voice, chars, status in [
        (key_a, "stock-joe", 100, "succeeded"),
        (key_a, "brand-x", 50, "succeeded"),
        (key_b, "stock-joe", 30, "succeeded"),
        (key_b, "stock-joe", 999, "failed"),
    ]:
        usage.record_usage(
            tenant,
            api_key=key,
            request_id="r",
            voice=voice,
            characters=chars,
            audio_seconds=chars / 10,
            model_version="piper:x",
            status=status,
        )
    client = client_for(make_key(tenant, scopes=["usage:read"]).token)
    by_voice = client.get("/api/v1/usage?group_by=voice").json()["results"]
    assert {r["voice"]: r["characters"] for r in by_voice} == {"brand-x": 50, "stock-joe": 130}
    assert {r["voice"]: r["failed"] for r in by_voice}["stock-joe"] == 1
    by_key = client.get(f"/api/v1/usage?group_by=key&api_key={key_a.pk}").json()["results"]
    assert by_key == [
        {"key": str(key_a.pk), "requests": 2, "failed": 0, "characters": 150, "audio_seconds": 15.0}
    ]
    by_day = client.get("/api/v1/usage").json()["results"]
    assert by_day[0]["day"] == timezone.now().date().isoformat()
    assert by_day[0]["characters"] == 180
    csv_response = client.get("/api/v1/usage?group_by=voice&format=csv")
    assert csv_response["Content-Type"].startswith("text/csv")
    lines = csv_response.content.decode().strip().splitlines()
    assert lines[0] == "voice,requests,failed,characters,audio_seconds" and len(lines) == 3
    bad = client.get("/api/v1/usage?group_by=planet")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "validation_error"
