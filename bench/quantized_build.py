"""Stock Piper voice vs its int8-quantised build, on the same fixed sentences.

Usage: python bench/quantized_build.py [--threads 1] [--out-dir DIR] [--json PATH]

For each build: model size, load time (median of 3 loads; the sha256 is memoised beforehand,
so this is session creation + config), real-time factor per sentence (synthesis wall time /
audio duration, one warm-up first; median over sentences), faster-whisper WER over all
sentences (speech.asr, tiny.en int8), and the DNSMOS P.808 predicted MOS (speech.mos; mean
over sentences). Synthesis goes through `PiperEngine.synthesize` with default controls, as in
production (Piper's noise is on, so figures move a little between runs).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # allow `python bench/quantized_build.py` from the repo root
    ROOT = Path(__file__).resolve().parents[1]
    sys.path[:0] = [str(ROOT), str(ROOT / "platform")]

from speech import asr, mos  # noqa: E402
from speech.engines.base import ModelVersionSpec  # noqa: E402
from speech.engines.piper_engine import PiperEngine, default_spec  # noqa: E402
from speech.engines.quantize import quantize_piper, quantized_spec  # noqa: E402
from speech.testing.talents import HELD_OUT_SENTENCES, TRAIN_SENTENCES  # noqa: E402

SENTENCES = (*HELD_OUT_SENTENCES, *TRAIN_SENTENCES[:2])
WARM_UP = "Thank you for listening, and have a lovely day."


def measure(spec: ModelVersionSpec, threads: int) -> dict:
    load_times = []
    for _ in range(3):
        engine = PiperEngine(threads=threads)
        t0 = time.perf_counter()
        engine.load(spec)
        load_times.append(time.perf_counter() - t0)
    sr = engine.sample_rate
    engine.synthesize(WARM_UP)

    rtfs, moses, errors, ref_words, audio_s = [], [], 0.0, 0, 0.0
    for sentence in SENTENCES:
        t0 = time.perf_counter()
        audio = engine.synthesize(sentence)
        wall = time.perf_counter() - t0
        seconds = len(audio) / sr
        audio_s += seconds
        rtfs.append(wall / seconds)
        moses.append(mos.predict_mos(audio, sr, threads=threads))
        hyp = asr.transcribe(audio, sr, cpu_threads=threads)
        n_ref = len(asr.normalize_for_wer(sentence))
        errors += asr.wer(sentence, hyp) * n_ref
        ref_words += n_ref
    engine.close()
    path = Path(spec.artefact_path)
    return {
        "spec": spec.id,
        "size_mb": path.stat().st_size / 1e6,
        "load_s": statistics.median(load_times),
        "rtf_median": statistics.median(rtfs),
        "rtf_max": max(rtfs),
        "audio_s": audio_s,
        "wer": errors / ref_words,
        "mos_mean": statistics.fmean(moses),
        "mos_min": min(moses),
        "mos_per_sentence": moses,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out-dir", type=Path, help="where to write the int8 build (default: temp)")
    ap.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = ap.parse_args(argv)

    stock = default_spec()
    with tempfile.TemporaryDirectory() as tmp:
        out_dir = args.out_dir or Path(tmp)
        t0 = time.perf_counter()
        int8_path = quantize_piper(Path(stock.artefact_path), out_dir)
        quantize_s = time.perf_counter() - t0
        int8 = quantized_spec(int8_path)
        rows = {"stock": measure(stock, args.threads), "int8": measure(int8, args.threads)}

    print(
        f"{len(SENTENCES)} sentences, threads={args.threads}; int8 build made in "
        f"{quantize_s:.1f} s; ASR {asr.MODEL_NAME}; MOS {mos.MODEL_VERSION}"
    )
    print()
    print("| build | spec | size MB | load s | RTF median | RTF max | WER | MOS mean | MOS min |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in rows.items():
        print(
            f"| {name} | `{r['spec']}` | {r['size_mb']:.1f} | {r['load_s']:.2f} "
            f"| {r['rtf_median']:.3f} | {r['rtf_max']:.3f} | {r['wer']:.1%} "
            f"| {r['mos_mean']:.2f} | {r['mos_min']:.2f} |"
        )
    if args.json:
        payload = {
            "sentences": list(SENTENCES),
            "threads": args.threads,
            "quantize_s": quantize_s,
            "asr_model": asr.MODEL_NAME,
            "mos_model": mos.MODEL_VERSION,
            "builds": rows,
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
