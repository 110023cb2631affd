"""Repeat-prompt cache benchmark: a repeated short prompt (hit) against new ones (miss), through
the real stack (gunicorn, one Celery worker process, PostgreSQL, Redis), beside the engine alone
in the same run.

    PYTHONPATH=.:platform python bench/prompt_cache.py [--requests 20]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "platform")]
os.environ["PROMPT_CACHE_ENABLED"] = "1"

from bench.synthesis_api import TEXTS, Stack, engine_alone, pct, setup_tenant, warm  # noqa: E402

PROMPT = TEXTS["short"]


def synthesize(base: str, token: str, text: str) -> tuple[float, str]:
    req = urllib.request.Request(  # noqa: S310
        f"{base}/api/v1/synthesize",
        data=json.dumps({"voice": "stock-joe", "text": text, "format": "wav"}).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    started = time.perf_counter()
    with urllib.request.urlopen(req, timeout=300) as response:  # noqa: S310
        response.read()
        return time.perf_counter() - started, response.headers.get("X-Prompt-Cache", "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args()
    token = setup_tenant()
    engine = engine_alone(args.requests)["short"]
    stack = Stack(1, 8721)
    try:
        warm(stack.base, token, 1)
        # New text each time (a number the engine has to say): every request is a miss.
        misses = [
            synthesize(stack.base, token, f"{PROMPT} Reference {n}.") for n in range(args.requests)
        ]
        synthesize(stack.base, token, PROMPT)  # fills the cache
        hits = [synthesize(stack.base, token, PROMPT) for _ in range(args.requests)]
    finally:
        stack.stop()
    assert all(kind == "miss" for _, kind in misses) and all(kind == "hit" for _, kind in hits)
    miss_s, hit_s = [t for t, _ in misses], [t for t, _ in hits]
    print(f"### Repeat-prompt cache (sync, wav, stock-joe, {args.requests} requests each)\n")
    print("| path | p50 s | p95 s |")
    print("|---|---|---|")
    print(f"| engine alone (short text) | {pct(engine, 0.5):.3f} | {pct(engine, 0.95):.3f} |")
    print(f"| API, miss (new text) | {pct(miss_s, 0.5):.3f} | {pct(miss_s, 0.95):.3f} |")
    print(f"| API, hit (repeated text) | {pct(hit_s, 0.5):.3f} | {pct(hit_s, 0.95):.3f} |")
    print(f"\nHit p50 is x{pct(hit_s, 0.5) / pct(miss_s, 0.5):.2f} of a miss.")


if __name__ == "__main__":
    main()
