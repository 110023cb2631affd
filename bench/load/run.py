"""Throughput under a real load generator: locust against gunicorn with several processes.

Starts the real stack as bench/synthesis_api.py does (gunicorn with --web-processes processes
x 8 threads, a Celery worker of --workers processes, PostgreSQL, Redis, local object storage),
then runs headless locust (bench/load/locustfile.py, one locust process, closed loop) once per
scenario: a cheap authenticated endpoint (GET /api/v1/voices) and a short sync synthesis.
Reports requests/s, p50 and p99 (locust's histogram: times over 100 ms are kept to 10 ms, over
1 s to 100 ms) and failures. Load generator and server share this machine's cores.

    make bench-load     # or: flock /tmp/timbre-bench.lock python bench/load/run.py
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import synthesis_api as sa  # noqa: E402


def run_locust(base: str, token: str, scenario: str, users: int, seconds: int) -> dict:
    prefix = Path(tempfile.mkdtemp(prefix="timbre-locust-")) / scenario
    subprocess.run(
        [
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(HERE / "locustfile.py"),
            "--headless",
            "--only-summary",
            "--users",
            str(users),
            "--spawn-rate",
            str(users),
            "--run-time",
            f"{seconds}s",
            "--stop-timeout",
            "30",
            "--host",
            base,
            "--csv",
            str(prefix),
            "--loglevel",
            "WARNING",
        ],
        env={**os.environ, "TIMBRE_LOAD_TOKEN": token, "TIMBRE_LOAD_SCENARIO": scenario},
        check=False,  # a run with failures exits 1; the failures are reported below
        stdout=subprocess.DEVNULL,
    )
    with open(f"{prefix}_stats.csv") as handle:
        rows = list(csv.DictReader(handle))
    total = next(row for row in rows if row["Name"] == "Aggregated")
    return {
        "users": users,
        "requests": int(total["Request Count"]),
        "failures": int(total["Failure Count"]),
        "rps": float(total["Requests/s"]),
        "p50": float(total["50%"]),
        "p99": float(total["99%"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--web-processes", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2, help="Celery worker processes")
    parser.add_argument("--seconds", type=int, default=30, help="per scenario")
    parser.add_argument("--cheap-users", type=int, default=16)
    parser.add_argument("--synthesis-users", type=int, default=4)
    args = parser.parse_args()

    token = sa.setup_tenant()
    stack = sa.Stack(args.workers, 8741, web_processes=args.web_processes)
    try:
        sa.warm(stack.base, token, args.workers)
        results = {
            "voices": run_locust(stack.base, token, "voices", args.cheap_users, args.seconds),
            "synthesis": run_locust(
                stack.base, token, "synthesis", args.synthesis_users, args.seconds
            ),
        }
    finally:
        stack.stop()

    print(
        f"### locust, {args.seconds} s per scenario: gunicorn {args.web_processes} processes x 8 "
        f"threads, {args.workers} Celery worker processes\n"
    )
    print("| endpoint | users | requests | failures | requests/s | p50 ms | p99 ms |")
    print("|---|---|---|---|---|---|---|")
    names = {
        "voices": "GET /api/v1/voices",
        "synthesis": "POST /api/v1/synthesize (short, sync wav)",
    }
    for scenario, r in results.items():
        print(
            f"| {names[scenario]} | {r['users']} | {r['requests']} | {r['failures']} | "
            f"{r['rps']:.1f} | {r['p50']:.0f} | {r['p99']:.0f} |"
        )


if __name__ == "__main__":
    main()
