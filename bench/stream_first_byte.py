"""Time to first audio byte of a streamed long text, beside the engine's own first-sentence time
in the same run: the engine alone (in-process) and the real stack (gunicorn, one Celery worker
process, PostgreSQL, Redis) over HTTP on loopback, the stock voice, warm workers.

    PYTHONPATH=.:platform python bench/stream_first_byte.py [--repeats 10]

Each API request carries a fresh text (the long text with a numbered last sentence), so the
repeat-prompt cache never answers; the engine-alone runs use the same variants.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "platform")]
os.environ["PROMPT_CACHE_ENABLED"] = "0"

from bench.synthesis_api import TEXTS, Stack, pct, request, setup_tenant, warm  # noqa: E402


def variant(n: int) -> str:
    # The first sentence stays the long text's own ("Welcome to the quarterly review.").
    return f"{TEXTS['long']} Reference {n}."


def engine_first_sentence(repeats: int) -> tuple[list[float], list[float]]:
    """Seconds to the first sentence's audio and to the whole text, engine alone."""
    from speech import text
    from speech.engines.base import SynthesisControls, iter_synthesis
    from speech.engines.piper_engine import PiperEngine

    engine = PiperEngine()
    engine.load()
    first, whole = [], []
    for n in range(repeats + 1):
        started = time.perf_counter()
        chunks = iter_synthesis(engine, text.prepare(variant(n)), SynthesisControls())
        next(chunks)
        t_first = time.perf_counter() - started
        for _ in chunks:
            pass
        if n:  # the first run warms the model
            first.append(t_first)
            whole.append(time.perf_counter() - started)
    engine.close()
    return first, whole


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()

    token = setup_tenant()
    first, whole = engine_first_sentence(args.repeats)
    stack = Stack(1, 8711)
    ttfb: dict[str, list[float]] = {"pcm": [], "mp3": [], "opus": []}
    try:
        warm(stack.base, token, 1)
        for fmt in ttfb:
            for n in range(args.repeats):
                body = {
                    "voice": "stock-joe",
                    "text": variant(1000 + n),
                    "mode": "stream",
                    "format": fmt,
                }
                ttfb[fmt].append(request(stack.base, token, body)[0])
    finally:
        stack.stop()

    print(f"### Streaming the long text ({len(TEXTS['long'])} chars), {args.repeats} requests\n")
    print("| measure | p50 s | p95 s |")
    print("|---|---|---|")
    print(f"| engine alone: first sentence | {pct(first, 0.5):.3f} | {pct(first, 0.95):.3f} |")
    print(f"| engine alone: whole text | {pct(whole, 0.5):.3f} | {pct(whole, 0.95):.3f} |")
    for fmt, times in ttfb.items():
        print(
            f"| API `mode=stream`, {fmt}: first byte | {pct(times, 0.5):.3f} | "
            f"{pct(times, 0.95):.3f} |"
        )


if __name__ == "__main__":
    main()
