"""The cost of choosing a model version per request, next to the synthesis it decides.

    PYTHONPATH=.:platform .venv/bin/python bench/rollout_resolution.py [-n 2000]

On PostgreSQL (database `timbre_bench`, created if missing), with a live stock rollout at 20 %,
a tenant rollout policy and a version pin: `rollout.services.resolution.resolve` (the service
admission calls: its queries plus the rules) for a ramped tenant and for a pinned one, and the
pure rules alone (`rollout.assignment.resolve`). Then the stock engine's own synthesis of a
short sentence in the same process. Prints µs per call (p50/p95), queries per call and the
ratio to synthesis.
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
os.environ.setdefault("DEBUG", "0")  # no query log: it would be part of the measurement

SENTENCE = "Thank you for calling, how can I help?"


def ensure_database() -> None:
    import psycopg

    name = os.environ["DATABASE_URL"].rsplit("/", 1)[1]
    with psycopg.connect("postgres://postgres@127.0.0.1:5432/postgres", autocommit=True) as c:
        if not c.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            c.execute(f'CREATE DATABASE "{name}"')


def timed(fn, n: int, warmup: int = 100) -> dict:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e6  # noqa: E731
    return {
        "n": n,
        "p50_us": pick(0.5),
        "p95_us": pick(0.95),
        "mean_us": statistics.mean(ordered) * 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=2000)
    parser.add_argument("--synth", type=int, default=20, help="synthesis repetitions")
    args = parser.parse_args()

    ensure_database()
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from rollout import assignment
    from rollout.engines import engine_cache
    from rollout.models import Rollout, TenantRolloutPolicy, VersionPin
    from rollout.services import lifecycle, registry, resolution
    from rollout.services.authority import Authority
    from speech.engines.base import SynthesisControls
    from tenancy.services import tenants
    from voices.models import Voice

    call_command("migrate", verbosity=0)
    # A scratch database: end what an earlier run left live (one live rollout per family).
    Rollout.dangerously_unscoped.filter(state__in=Rollout.LIVE).update(state="completed")
    run = uuid.uuid4().hex[:6]
    ramped = tenants.create_tenant(f"bench-{run}-a", "Bench A", "enterprise")
    pinned = tenants.create_tenant(f"bench-{run}-b", "Bench B", "enterprise")
    voice = Voice.dangerously_unscoped.select_related("model_version").get(
        slug="stock-joe", tenant=None
    )
    candidate = registry.register_alias_of_stock(f"joe-medium-bench-{run}")
    lifecycle.start(Authority.operator("bench"), candidate, steps=[20, 100])
    TenantRolloutPolicy.objects.for_tenant(ramped).create(allow_explicit_versions=True)
    VersionPin.objects.for_tenant(pinned).create(family="stock", version=voice.model_version)

    users = [f"user-{i}" for i in range(args.n)]
    counter = iter(range(10**9))

    def service(tenant):
        return lambda: resolution.resolve(
            tenant, voice, api_key_id="k1", end_user=users[next(counter) % len(users)]
        )

    rollout = assignment.CandidateRollout(candidate.pk, 20.0, "salt")
    policy = assignment.TenantPolicy(tenant_id=str(ramped.pk))

    def pure():
        user = users[next(counter) % len(users)]
        assignment.resolve(
            stable_version_id=voice.model_version_id,
            tenant=policy,
            stickiness_key=assignment.stickiness_key(
                end_user=user, api_key_id="k1", tenant_id=str(ramped.pk)
            ),
            rollout=rollout,
        )

    rows = {}
    for name, fn in (
        ("resolve(): live rollout at 20 %, tenant policy", service(ramped)),
        ("resolve(): pinned tenant", service(pinned)),
        ("assignment.resolve() alone (pure rules)", pure),
    ):
        with CaptureQueriesContext(connection) as queries:
            fn()
        rows[name] = {**timed(fn, args.n), "queries": len(queries)}

    engine = engine_cache().get(registry.stock_spec())
    synth = timed(lambda: engine.synthesize(SENTENCE, SynthesisControls()), args.synth, warmup=2)

    print("| path | calls | p50 µs | p95 µs | queries | p50 share of synthesis |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, row in rows.items():
        share = row["p50_us"] / synth["p50_us"]
        print(
            f"| {name} | {row['n']} | {row['p50_us']:.0f} | {row['p95_us']:.0f} | "
            f"{row['queries']} | {share:.2%} |"
        )
    print(
        f"| engine synthesis of {len(SENTENCE)} characters (stock Piper, 1 thread) | "
        f"{synth['n']} | {synth['p50_us']:.0f} | {synth['p95_us']:.0f} | - | 100% |"
    )


if __name__ == "__main__":
    main()
