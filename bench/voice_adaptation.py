"""Voice adaptation on synthetic talents, through the production routine ``speech.finetune``.

Usage: python bench/voice_adaptation.py [--talents ava,ben,cara,dev] [--train 30]
       [--held-out 8] [--steps 400] [--device cpu] [--json out.json]

For each talent, its recordings of ``--train`` training sentences and ``--held-out`` held-out
sentences (``speech.testing.talents``; the two sets never overlap) go to
``speech.finetune.fine_tune`` exactly as the worker passes a talent's uploads: it renders the
transcripts with the deterministic stock Piper voice, trains the adapter, chooses the conversion
method on three training sentences (similarity among methods within 10 WER points of the
best) and
evaluates on the held-out sentences: speaker similarity to the enrolment (mean embedding of the
training recordings) for stock / custom / the talent's own recordings, mel-cepstral distortion,
faster-whisper WER and DNSMOS P.808, then applies the release gates (``speech.finetune.Gates``).

"fine-tune s" is the whole ``fine_tune`` call: rendering, features, training, method choice and
the held-out evaluation; "train s" is features + alignment + training alone. One torch thread.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    ROOT = Path(__file__).resolve().parents[1]
    sys.path[:0] = [str(ROOT), str(ROOT / "platform")]

from speech import finetune as ft  # noqa: E402
from speech import voice_model as vm  # noqa: E402
from speech.testing import talents as T  # noqa: E402


def utterances(tal, sentences) -> list[ft.Utterance]:
    return [ft.Utterance(T.render(tal, s), T.SAMPLE_RATE, s) for s in sentences]


def run_talent(tal, n_train: int, n_held: int, steps: int, device: str, base) -> dict:
    train = utterances(tal, T.TRAIN_SENTENCES[:n_train])
    held = utterances(tal, T.HELD_OUT_SENTENCES[:n_held])
    t = time.perf_counter()
    res = ft.fine_tune(train, held, base=base, config=vm.AdapterConfig(steps=steps), device=device)
    wall = time.perf_counter() - t
    return {
        "talent": tal.name,
        "passed": res.passed,
        "gate_failures": res.gate_failures,
        "fine_tune_seconds": round(wall, 1),
        "metrics": res.metrics,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--talents", default=",".join(t.name for t in T.TALENTS))
    ap.add_argument("--train", type=int, default=30)
    ap.add_argument("--held-out", type=int, default=8)
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--device", default=None)
    ap.add_argument("--json")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    base = ft.default_base()
    t0 = time.perf_counter()
    results = []
    head = (
        f"{'talent':6s} {'method':6s} {'sim stock→custom (own)':24s} {'WER custom/own':15s} "
        f"{'MOS custom/stock':17s} {'fine-tune s':>11s}  gate"
    )
    print(head, flush=True)
    for name in args.talents.split(","):
        r = run_talent(T.by_name(name), args.train, args.held_out, args.steps, device, base)
        results.append(r)
        m = r["metrics"]
        verdict = (
            "pass"
            if r["passed"]
            else "FAIL: " + ", ".join(sorted({f["metric"] for f in r["gate_failures"]}))
        )
        print(
            f"{name:6s} {m['method']:6s} "
            f"{m['stock_similarity']:.3f} → {m['speaker_similarity']:.3f} "
            f"({m['talent_similarity']:.3f})    "
            f"{100 * m['wer']:5.1f} / {100 * m['talent_wer']:4.1f} %   "
            f"{m['mos']:.2f} / {m['stock_mos']:.2f}       "
            f"{r['fine_tune_seconds']:8.1f}  {verdict}",
            flush=True,
        )
    out = {
        "device": device,
        "train_utterances": args.train,
        "held_out_utterances": args.held_out,
        "steps": args.steps,
        "seconds": round(time.perf_counter() - t0, 1),
        "talents": results,
    }
    print(json.dumps(out, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
