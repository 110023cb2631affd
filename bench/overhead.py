"""Platform overhead of a sync synthesis request, and where it goes (issue 11).

One run, on one machine: the engine alone in-process (text -> prepared segments -> Piper ->
joined audio, one thread, as the worker runs it) beside sync `wav` requests through the real
stack (gunicorn, one Celery worker process, PostgreSQL, Redis, and object storage: local files,
or with --storage s3 a real S3 HTTP server, moto, as production talks to MinIO). Requests run
one at a time, warm.

Then (unless --no-spans) the same requests once more against a stack whose processes record
timing spans (bench/spans.py), and a breakdown of the short sentence's critical path: HTTP,
middleware and authentication, admission, queueing, the worker's steps, the result
notification, the web process's reload and read-back, plus SQL statements, commits and Redis
commands per request. Spans cost a little themselves: the overhead figures come from the first
stack, without them.

    flock /tmp/timbre-bench.lock python bench/overhead.py --repeats 15
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import spans as span_tools  # noqa: E402
import synthesis_api as sa  # noqa: E402

TEXT_NAMES = ("short", "medium")

# Critical-path events, in the order they happen: (segment that ends at the event, span, edge).
# A segment's time is from the previous event present to this one.
EVENTS = [
    ("HTTP in: gunicorn, request parsing", "web.django", 4),
    ("middleware, API-key auth, access, rate limit", "web.admission", 4),
    ("admission: voice, validate, rollout, quota tx, insert, commit, enqueue", "web.enqueue", 5),
    ("queue: Redis broker -> Celery pool process", "worker.run", 4),
    ("claim, consent check, engine lease, cache lookup", "worker.engine", 4),
    ("engine: synthesis", "worker.join", 4),
    ("engine: join", "worker.join", 5),
    ("prompt-cache store, consent check", "worker.watermark", 4),
    ("watermark (the rest of it, when marked ahead)", "worker.watermark", 5),
    ("encode", "worker.encode", 5),
    ("storage write", "storage.put", 5),
    ("quality sample", "worker.succeed", 4),
    ("succeed: result, quota commits, usage ledger (one tx)", "worker.metrics", 4),
    ("metrics", "worker.announce", 4),
    ("notify: publish end -> web process wakes", "web.wait.channel", 5),
    ("reload the request (web)", "web.read_back", 4),
    ("storage read-back (web)", "web.read_back", 5),
    ("response (web)", "web.django", 5),
    ("HTTP out: send, client reads", None, None),
]


def start_s3() -> subprocess.Popen:
    port = 8799
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.environ.update(
        S3_ENDPOINT=f"127.0.0.1:{port}",
        S3_ACCESS_KEY="bench",
        S3_SECRET_KEY="bench",  # noqa: S105
        S3_BUCKET=f"bench-{sa.RUN}",
    )
    import socket

    for _ in range(100):
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return process
        time.sleep(0.1)
    raise RuntimeError("moto did not start")


def timed_requests(base: str, token: str, names, repeats: int) -> dict[str, list[tuple]]:
    """{text name: [(client start, client end)]}, perf_counter times."""
    windows = {name: [] for name in names}
    for _ in range(repeats):
        for name in names:
            started = time.perf_counter()
            sa.request(base, token, {"voice": "stock-joe", "text": sa.TEXTS[name]})
            windows[name].append((started, time.perf_counter()))
    return windows


def critical_path(spans: list[list], start: float, end: float) -> dict[str, float]:
    """Segment label -> seconds, for one request's window."""
    segments, previous = {}, start
    for label, name, edge in EVENTS:
        if name is None:
            moment = end
        else:
            moments = [s[edge] for s in spans if s[2] == name and s[edge] >= previous]
            if not moments:
                continue  # the step did not happen: its time counts to the next one
            moment = min(moments)
        segments[label] = moment - previous
        previous = moment
    return segments


def counts(spans: list[list]) -> dict[str, tuple[int, float]]:
    """'web sql' etc. -> (count, seconds)."""
    found: dict[str, list] = {}
    for _pid, role, name, label, begin, finish in spans:
        if name == "sql":
            commit = label == "COMMIT"
            keys = [f"{role}: SQL statements", *([f"{role}: commits"] if commit else [])]
        elif name == "redis":
            keys = [f"{role}: Redis round trips"]
        else:
            continue
        for key in keys:
            found.setdefault(key, []).append(finish - begin)
    return {key: (len(v), sum(v)) for key, v in sorted(found.items())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--storage", choices=("local", "s3"), default="local")
    parser.add_argument("--no-spans", action="store_true")
    parser.add_argument(
        "--dump", action="store_true", help="print the last traced request's spans in order"
    )
    args = parser.parse_args()

    s3 = start_s3() if args.storage == "s3" else None
    try:
        token = sa.setup_tenant()
        if s3 is not None:
            from core.storage import get_storage

            get_storage().ensure_bucket()
        engine = sa.engine_alone(args.repeats, TEXT_NAMES)
        stack = sa.Stack(1, 8731)
        try:
            sa.warm(stack.base, token, 2)
            windows = timed_requests(stack.base, token, TEXT_NAMES, args.repeats)
        finally:
            stack.stop()
        api = {name: [b - a for a, b in w] for name, w in windows.items()}

        breakdown = None
        if not args.no_spans:
            spans_file = Path(tempfile.mkdtemp(prefix="timbre-spans-")) / "spans.jsonl"
            stack = sa.Stack(1, 8732, spans=spans_file)
            try:
                sa.warm(stack.base, token, 2)
                spans_file.write_text("")  # the warm-up's spans go
                traced = timed_requests(stack.base, token, ["short"], args.repeats)["short"]
                time.sleep(0.5)  # the worker's last writes after the response
            finally:
                stack.stop()
            recorded = span_tools.read(str(spans_file))
            per_request = [span_tools.within(recorded, a, b) for a, b in traced]
            if args.dump:
                start = traced[-1][0]
                for _pid, role, name, label, a, b in sorted(per_request[-1], key=lambda s: s[4]):
                    at, took = (a - start) * 1000, (b - a) * 1000
                    print(f"{role:6} {at:8.2f} {took:7.2f}  {name} {label}")
            breakdown = {
                "total": [b - a for a, b in traced],
                "path": [
                    critical_path(s, a, b) for s, (a, b) in zip(per_request, traced, strict=True)
                ],
                "counts": [counts(s) for s in per_request],
            }
    finally:
        if s3 is not None:
            s3.terminate()

    p50 = sa.pct
    print(f"### Overhead, sync wav, stock-joe, storage {args.storage} ({args.repeats} each)\n")
    print("| text | chars | engine p50 s | API p50 s | API p95 s | overhead (p50) | added p50 ms |")
    print("|---|---|---|---|---|---|---|")
    for name in TEXT_NAMES:
        e, a = engine[name], api[name]
        print(
            f"| {name} | {len(sa.TEXTS[name])} | {p50(e, 0.5):.3f} | {p50(a, 0.5):.3f} | "
            f"{p50(a, 0.95):.3f} | x{p50(a, 0.5) / p50(e, 0.5):.2f} | "
            f"{(p50(a, 0.5) - p50(e, 0.5)) * 1000:.0f} |"
        )
    if breakdown is None:
        return
    total = statistics.median(breakdown["total"])
    print(f"\n### Where the short sentence's time goes (spans; p50 total {total * 1000:.0f} ms)\n")
    print("| segment of the critical path | p50 ms | mean ms |")
    print("|---|---|---|")
    labels = [label for label, *_ in EVENTS]
    for label in labels:
        values = [path.get(label, 0.0) for path in breakdown["path"]]
        if max(values) == 0:
            continue
        print(
            f"| {label} | {statistics.median(values) * 1000:.1f} | "
            f"{statistics.mean(values) * 1000:.1f} |"
        )
    print("\n| per request | count (median) | ms (median) |")
    print("|---|---|---|")
    keys = sorted({k for c in breakdown["counts"] for k in c})
    for key in keys:
        n = [c.get(key, (0, 0.0))[0] for c in breakdown["counts"]]
        ms = [c.get(key, (0, 0.0))[1] * 1000 for c in breakdown["counts"]]
        print(f"| {key} | {statistics.median(n):.0f} | {statistics.median(ms):.1f} |")


if __name__ == "__main__":
    main()
