"""Real-time factor of the Piper engine alone (no Django, no encoding).

Usage: python bench/engine_rtf.py [--threads 1] [--repeat 3] [--deterministic]

RTF = synthesis wall time / audio duration (lower is better; < 1 is faster than
real time). Texts go through the same front-end as production (text.prepare)
and are joined with the crossfade, so chunking overhead is included.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # allow `python bench/engine_rtf.py` from the repo root
    ROOT = Path(__file__).resolve().parents[1]
    sys.path[:0] = [str(ROOT), str(ROOT / "platform")]

from speech import text as text_mod  # noqa: E402
from speech.engines.base import SynthesisControls, iter_synthesis  # noqa: E402
from speech.engines.piper_engine import PiperEngine  # noqa: E402

SHORT = "Your order has shipped and will arrive tomorrow."
MEDIUM = (
    "Thanks for calling Timbre support. Your account balance is $42.17 as of "
    "Nov 21, 2026. If you would like to hear your recent transactions, please stay "
    "on the line, and a representative will be with you shortly."
)
LONG = " ".join(
    [
        "The history of recorded sound begins in the middle of the nineteenth century.",
        "Early inventors captured vibrations on paper and soot, but could not play them back.",
        "In 1877, the phonograph changed that, storing sound as grooves in tin foil.",
        "Wax cylinders followed, and then flat discs that could be pressed by the thousand.",
        "Magnetic tape arrived in the 1940s, making editing and multitrack recording possible.",
        "Digital audio, sampled 44,100 times per second, became common with the compact disc.",
        "Today, speech synthesis systems generate natural voices from text in real time.",
        "They rely on neural networks trained on many hours of carefully recorded speech.",
        "Quality is judged by naturalness, intelligibility, and how well prosody is controlled.",
        "Latency matters too, because listeners expect the first words almost immediately.",
    ]
)
CASES = [
    ("short", SHORT, "neutral"),
    ("medium", MEDIUM, "neutral"),
    ("long", LONG, "neutral"),
    ("long (excited, DSP)", LONG, "excited"),
]


def peak_rss_mb() -> float:
    # Linux reports ru_maxrss in KiB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_case(engine: PiperEngine, text: str, emotion: str, repeat: int) -> dict[str, float]:
    chunks = text_mod.prepare(text)
    controls = SynthesisControls(emotion=emotion, intensity=1.0)
    times, firsts = [], []
    n_samples = 0
    for _ in range(repeat + 1):  # first run is warm-up
        t0 = time.perf_counter()
        first = None
        n_samples = 0
        for audio, pause in iter_synthesis(engine, chunks, controls):
            if first is None:
                first = time.perf_counter() - t0
            n_samples += len(audio) + int(engine.sample_rate * pause / 1000)
        times.append(time.perf_counter() - t0)
        firsts.append(first or 0.0)
    wall = statistics.median(times[1:])
    audio_s = n_samples / engine.sample_rate
    return {
        "chars": len(text),
        "chunks": len(chunks),
        "audio_s": audio_s,
        "wall_s": wall,
        "first_s": statistics.median(firsts[1:]),
        "rtf": wall / audio_s,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--deterministic", action="store_true")
    args = ap.parse_args(argv)

    rss_before = peak_rss_mb()
    engine = PiperEngine(threads=args.threads, deterministic=args.deterministic)
    t0 = time.perf_counter()
    spec = engine.load()
    load_s = time.perf_counter() - t0
    rss_loaded = peak_rss_mb()

    rows = [(name, run_case(engine, txt, emo, args.repeat)) for name, txt, emo in CASES]

    print(
        f"Engine `{spec.id}` on {engine.providers[0]}, threads={args.threads}, "
        f"deterministic={args.deterministic}, repeat={args.repeat} (median, after warm-up)"
    )
    print()
    print(
        f"Load time: {load_s:.2f} s (incl. sha256 of the .onnx); peak RSS before load "
        f"{rss_before:.0f} MB, after load {rss_loaded:.0f} MB"
    )
    print()
    print("| text | chars | chunks | audio s | synth s | first chunk s | RTF |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, r in rows:
        print(
            f"| {name} | {r['chars']} | {r['chunks']} | {r['audio_s']:.2f} | {r['wall_s']:.2f} "
            f"| {r['first_s']:.2f} | {r['rtf']:.3f} |"
        )
    print()
    print(f"Peak RSS (whole run): {peak_rss_mb():.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
