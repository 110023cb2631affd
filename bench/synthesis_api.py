"""Synthesis benchmark: the engine alone versus the whole platform path.

Starts a real stack on this machine: gunicorn (web), Celery workers (1 and then 2 processes),
PostgreSQL and Redis. Measures
  - engine alone: latency of text -> audio (prepare, synthesize, join) in-process;
  - API sync latency p50/p95 for short, medium and long texts (auth, quota, queue, worker,
    watermark, encode, storage, response) and the overhead ratio API / engine;
  - time to first audio byte when streaming the long text;
  - throughput at concurrency 1, 2, 4, 8 with one and with two worker processes;
  - peak resident memory of each worker process.

    make bench-synthesis      # or: PYTHONPATH=.:platform python bench/synthesis_api.py
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "platform")]
RUN = uuid.uuid4().hex[:6]
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/timbre_bench")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/12")
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/12")
os.environ.setdefault("CELERY_BROKER_KEYPREFIX", f"bench-{RUN}:")
os.environ.setdefault("CACHE_KEY_PREFIX", f"bench-{RUN}")
os.environ.setdefault("TIMBRE_VAR_DIR", f"/tmp/timbre-bench-{RUN}")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")
# The texts repeat: with the repeat-prompt cache on, most requests here would skip the engine.
# bench/prompt_cache.py measures the cache.
os.environ.setdefault("PROMPT_CACHE_ENABLED", "0")
os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "platform")])

TEXTS = {
    "short": "Thanks for calling. How can I help you today?",
    "medium": (
        "Your order has shipped and should arrive on Thursday. You can track it from the "
        "link in your email. If anything looks wrong, reply to this message and our team "
        "will sort it out."
    ),
    "long": " ".join(
        [
            "Welcome to the quarterly review. Revenue grew by twelve percent, driven by new",
            "enterprise customers in Europe and a strong holiday season. Support answered",
            "ninety eight percent of tickets within a day. Next quarter we will open an office",
            "in Denver, launch two new products, and hire forty engineers. Our priorities are",
            "reliability, security and a faster onboarding experience for every customer.",
            "Thank you all for your hard work, and see you at the next all hands meeting.",
        ]
    ),
}


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def setup_tenant() -> str:
    import psycopg

    name = os.environ["DATABASE_URL"].rsplit("/", 1)[1]
    with psycopg.connect("postgres://postgres@127.0.0.1:5432/postgres", autocommit=True) as c:
        if not c.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            c.execute(f'CREATE DATABASE "{name}"')
    import django

    django.setup()
    from django.core.management import call_command

    from tenancy.services import keys, tenants
    from tenancy.services.access import Access

    call_command("migrate", verbosity=0)
    tenant = tenants.create_tenant(f"bench-{RUN}", "Bench", "enterprise")
    plan = tenant.plan
    plan.requests_per_minute_per_key = plan.requests_per_minute_per_tenant = 10**6
    plan.concurrent_jobs = 64
    plan.save()
    return keys.create_key(Access.operator(tenant), name="bench", scopes=["admin"]).token


def engine_alone(repeats: int, names=tuple(TEXTS)) -> dict[str, list[float]]:
    from speech import dsp, text
    from speech.engines.base import SynthesisControls, iter_synthesis
    from speech.engines.piper_engine import PiperEngine

    engine = PiperEngine()
    engine.load()
    results = {}
    for name in names:
        sample, times = TEXTS[name], []
        for _ in range(repeats):
            started = time.perf_counter()
            parts, pauses = [], []
            for audio, pause in iter_synthesis(engine, text.prepare(sample), SynthesisControls()):
                parts.append(audio)
                pauses.append(pause)
            dsp.crossfade_join(parts, engine.sample_rate, 30.0, pauses)
            times.append(time.perf_counter() - started)
        results[name] = times
    engine.close()
    return results


class Stack:
    """gunicorn (`web_processes` x 8 threads) and a Celery worker of `workers` processes.
    With `spans` (a file), both record timing spans there (bench/spans.py)."""

    def __init__(self, workers: int, port: int, spans: Path | None = None, web_processes: int = 2):
        from config.celery import worker_command

        env = {**os.environ, "SYNTHESIS_ENGINE_CACHE_SIZE": "2"}
        web_options, worker = (
            [],
            worker_command(
                "gpu,cpu", workers, "--loglevel", "WARNING", "-n", f"bench-{RUN}-{workers}@%h"
            ),
        )
        if spans is not None:
            env["TIMBRE_BENCH_SPANS"] = str(spans)
            web_options = ["-c", str(ROOT / "bench" / "spans_gunicorn.py")]
            worker[1:3] = [str(ROOT / "bench" / "spans_celery.py")]  # for `-m celery`
        self.web = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                *web_options,
                "config.wsgi:application",
                "--pythonpath",
                str(ROOT / "platform"),
                "-b",
                f"127.0.0.1:{port}",
                "-w",
                str(web_processes),
                "--threads",
                "8",
                "--timeout",
                "300",
                "--log-level",
                "warning",
            ],
            env=env,
            cwd=ROOT,
            start_new_session=True,
        )
        self.worker = subprocess.Popen(
            worker,
            env=env,
            cwd=ROOT,
            start_new_session=True,
        )
        self.base = f"http://127.0.0.1:{port}"
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{self.base}/healthz", timeout=1)  # noqa: S310
                break
            except OSError:
                time.sleep(0.5)

    def worker_peak_rss_mb(self) -> list[float]:
        children = subprocess.run(
            ["pgrep", "-P", str(self.worker.pid)], capture_output=True, text=True
        ).stdout.split()
        peaks = []
        for pid in children:
            status = Path(f"/proc/{pid}/status").read_text()
            peak_kb = next(
                int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM")
            )
            peaks.append(peak_kb / 1024)
        return peaks

    def stop(self):
        for process in (self.web, self.worker):
            os.killpg(process.pid, signal.SIGTERM)
        for process in (self.web, self.worker):
            process.wait(timeout=30)


def request(base: str, token: str, body: dict, first_byte_only: bool = False) -> tuple:
    data = json.dumps(body).encode()
    req = urllib.request.Request(
        f"{base}/api/v1/synthesize",
        data=data,
        method="POST",  # noqa: S310
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    started = time.perf_counter()
    with urllib.request.urlopen(req, timeout=300) as response:  # noqa: S310
        first = response.read(1)
        ttfb = time.perf_counter() - started
        rest = response.read()
    assert first and rest is not None
    return ttfb, time.perf_counter() - started


def warm(base, token, workers):
    threads = [
        threading.Thread(
            target=request, args=(base, token, {"voice": "stock-joe", "text": TEXTS["short"]})
        )
        for _ in range(workers * 2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def throughput(base, token, concurrency: int, total: int) -> float:
    done = []
    lock = threading.Lock()
    counter = iter(range(total))

    def loop():
        while True:
            with lock:
                if next(counter, None) is None:
                    return
            request(base, token, {"voice": "stock-joe", "text": TEXTS["medium"]})
            done.append(1)

    started = time.perf_counter()
    threads = [threading.Thread(target=loop) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(done) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--throughput-requests", type=int, default=16)
    args = parser.parse_args()

    token = setup_tenant()
    engine = engine_alone(args.repeats)
    report = {"engine": engine}
    for workers in (1, 2):
        stack = Stack(workers, 8700 + workers)
        try:
            warm(stack.base, token, workers)
            if workers == 1:
                api = {
                    name: [
                        request(stack.base, token, {"voice": "stock-joe", "text": t})[1]
                        for _ in range(args.repeats)
                    ]
                    for name, t in TEXTS.items()
                }
                report["api"] = api
                report["ttfb"] = [
                    request(
                        stack.base,
                        token,
                        {
                            "voice": "stock-joe",
                            "text": TEXTS["long"],
                            "mode": "stream",
                            "format": "pcm",
                        },
                    )[0]
                    for _ in range(args.repeats)
                ]
            report[f"throughput_{workers}"] = {
                c: throughput(stack.base, token, c, args.throughput_requests) for c in (1, 2, 4, 8)
            }
            report[f"rss_{workers}"] = stack.worker_peak_rss_mb()
        finally:
            stack.stop()

    print("### Engine alone vs the API (sync, wav, stock-joe)\n")
    print("| text | chars | engine p50 s | engine p95 s | API p50 s | API p95 s | overhead (p50) |")
    print("|---|---|---|---|---|---|---|")
    for name, sample in TEXTS.items():
        e, a = engine[name], report["api"][name]
        print(
            f"| {name} | {len(sample)} | {pct(e, 0.5):.2f} | {pct(e, 0.95):.2f} | "
            f"{pct(a, 0.5):.2f} | {pct(a, 0.95):.2f} | x{pct(a, 0.5) / pct(e, 0.5):.2f} |"
        )
    ttfb = report["ttfb"]
    print(
        f"\nStreaming the long text (pcm): time to first byte p50 {pct(ttfb, 0.5):.2f} s, "
        f"p95 {pct(ttfb, 0.95):.2f} s; the engine needs {pct(engine['long'], 0.5):.2f} s for "
        "the whole text.\n"
    )
    print("### Throughput (medium text, requests/s)\n")
    print("| concurrency | 1 worker process | 2 worker processes |")
    print("|---|---|---|")
    for c in (1, 2, 4, 8):
        print(f"| {c} | {report['throughput_1'][c]:.2f} | {report['throughput_2'][c]:.2f} |")
    print(
        f"\nPeak RSS per worker process: 1 worker {statistics.mean(report['rss_1']):.0f} MB; "
        f"2 workers {', '.join(f'{r:.0f}' for r in report['rss_2'])} MB."
    )


if __name__ == "__main__":
    main()
