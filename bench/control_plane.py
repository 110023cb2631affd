"""Control-plane benchmark: authenticated requests/s and latency percentiles, single process.

Runs the real request path in-process (WSGI handler, API-key auth with HMAC lookup, tenant
resolution, scope check, Redis rate limiting, PostgreSQL) without network overhead, plus the
quota reserve/commit path on its own.

    make bench-control        # or: PYTHONPATH=.:platform python bench/control_plane.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "platform")]
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/timbre_bench")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/12")
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/12")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")


def ensure_database() -> None:
    import psycopg

    name = os.environ["DATABASE_URL"].rsplit("/", 1)[1]
    with psycopg.connect("postgres://postgres@127.0.0.1:5432/postgres", autocommit=True) as c:
        if not c.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            c.execute(f'CREATE DATABASE "{name}"')


def percentiles(samples: list[float]) -> dict:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000  # noqa: E731
    return {"p50_ms": pick(0.50), "p99_ms": pick(0.99), "mean_ms": statistics.mean(ordered) * 1000}


def timed(fn, n: int, warmup: int = 50) -> dict:
    for _ in range(warmup):
        fn()
    samples = []
    started = time.perf_counter()
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - started
    return {"n": n, "per_s": n / elapsed, **percentiles(samples)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=2000)
    args = parser.parse_args()

    ensure_database()
    import django

    django.setup()
    from django.core.management import call_command
    from django.test import Client

    from tenancy.services import keys, quotas, tenants
    from tenancy.services.access import Access

    call_command("migrate", verbosity=0)
    tenant = tenants.create_tenant(f"bench-{uuid.uuid4().hex[:6]}", "Bench", "enterprise")
    tenant.plan.requests_per_minute_per_key = 10**9
    tenant.plan.requests_per_minute_per_tenant = 10**9
    tenant.plan.save()
    token = keys.create_key(Access.operator(tenant), name="bench", scopes=["admin"]).token
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")

    def authenticated_get():
        response = client.get("/api/v1/tenant")
        assert response.status_code == 200, response.content

    def reserve_commit():
        quotas.commit(quotas.reserve(tenant, None, 10), actual=10)

    results = {
        "GET /api/v1/tenant (auth + scope + rate limit + quota read)": timed(
            authenticated_get, args.n
        ),
        "quota reserve + commit (PostgreSQL)": timed(reserve_commit, args.n),
    }
    print("| path | requests | req/s | p50 ms | p99 ms |")
    print("|---|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['n']} | {r['per_s']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} |")


if __name__ == "__main__":
    main()
