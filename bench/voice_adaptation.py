"""Voice adaptation on synthetic talents: similarity, MCD, WER, MOS and training time.

Usage: python bench/voice_adaptation.py [--talents ava,ben,cara,dev] [--train 30]
       [--steps 400] [--device cpu] [--json out.json]

For each talent: the transcripts of ``--train`` training sentences are rendered with the stock
Piper voice and paired with the talent's recordings of them; ``speech.voice_model.train`` fits
the adapter (timed: feature extraction, alignment and training, i.e. the whole fine-tune after
rendering; the Piper rendering time is reported separately). ``choose_method`` then picks
"filter" or "world" on two *training* sentences. Evaluation uses the 8 held-out sentences,
never trained on:

- speaker similarity: cosine to the talent's enrolment (mean embedding of 5 training
  recordings) of the stock voice, the converted voice (both methods, and the chosen one) and
  the talent's own held-out recordings (the ceiling);
- mel-cepstral distortion to the talent's own recording (DTW-aligned), stock and converted;
- word error rate of faster-whisper (tiny.en) on stock, converted and the talent's own speech;
- predicted MOS (DNSMOS P.808): stock, converted and the talent's own speech.
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

import numpy as np  # noqa: E402

from speech import asr, mos, speaker  # noqa: E402
from speech import voice_model as vm  # noqa: E402
from speech.testing import talents as T  # noqa: E402


def mean(xs) -> float:
    return round(float(np.mean(xs)), 4)


def run_talent(tal, n_train: int, steps: int, device: str) -> dict:
    sr = T.SAMPLE_RATE
    texts = T.TRAIN_SENTENCES[:n_train]
    t = time.perf_counter()
    bases = [np.asarray(T.stock(s)) for s in texts]
    t_render = time.perf_counter() - t
    pairs = [vm.Pair(b, T.render(tal, s), sr) for b, s in zip(bases, texts, strict=True)]
    t = time.perf_counter()
    model = vm.train(pairs, config=vm.AdapterConfig(steps=steps), device=device)
    t_train = time.perf_counter() - t
    enrol = speaker.mean_embedding([speaker.embed(T.render(tal, s), sr) for s in texts[:5]])
    t = time.perf_counter()
    method, method_scores = vm.choose_method(model, bases[-2:], enrol, sr)
    t_choose = time.perf_counter() - t
    rows = {
        k: {"sim": [], "mcd": [], "wer": [], "mos": []} for k in ("stock", "filter", "world", "own")
    }
    for s in T.HELD_OUT_SENTENCES:
        base = np.asarray(T.stock(s))
        own = np.asarray(T.render(tal, s))
        clips = {
            "stock": base,
            "filter": model.convert(base, sr, "filter"),
            "world": model.convert(base, sr, "world"),
            "own": own,
        }
        own_mcep = vm.extract(own, sr).mcep
        for k, x in clips.items():
            r = rows[k]
            r["sim"].append(speaker.cosine(enrol, speaker.embed(x, sr)))
            r["mcd"].append(vm.mcd(vm.extract(x, sr).mcep, own_mcep) if k != "own" else 0.0)
            r["wer"].append(asr.wer(s, asr.transcribe(x, sr)))
            r["mos"].append(mos.predict_mos(x, sr))
    summary = {k: {m: mean(v) for m, v in r.items()} for k, r in rows.items()}
    summary["converted"] = summary[method]
    return {
        "talent": tal.name,
        "method": method,
        "method_scores_on_training_sentences": method_scores,
        "render_seconds": round(t_render, 1),
        "train_seconds": round(t_train, 1),
        "choose_method_seconds": round(t_choose, 1),
        "loss_first": model.stats["loss_first"],
        "loss_last": model.stats["loss_last"],
        "duration_ratio": model.stats["duration_ratio"],
        "train_frames": model.stats["train_frames"],
        "held_out": summary,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--talents", default=",".join(t.name for t in T.TALENTS))
    ap.add_argument("--train", type=int, default=30)
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--device", default=None)
    ap.add_argument("--json")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    t0 = time.perf_counter()
    results = []
    for name in args.talents.split(","):
        r = run_talent(T.by_name(name), args.train, args.steps, device)
        results.append(r)
        h = r["held_out"]
        print(
            f"{name:5s} {r['method']:6s} train {r['train_seconds']:5.1f}s  "
            f"sim stock {h['stock']['sim']:.3f} conv {h['converted']['sim']:.3f} "
            f"own {h['own']['sim']:.3f}  mcd {h['stock']['mcd']:.2f}->{h['converted']['mcd']:.2f}"
            f"  wer stock {h['stock']['wer']:.3f} conv {h['converted']['wer']:.3f} "
            f"own {h['own']['wer']:.3f}  mos stock {h['stock']['mos']:.2f} "
            f"conv {h['converted']['mos']:.2f} own {h['own']['mos']:.2f}",
            flush=True,
        )
    out = {
        "device": device,
        "train_utterances": args.train,
        "steps": args.steps,
        "seconds": round(time.perf_counter() - t0, 1),
        "talents": results,
    }
    print(json.dumps(out, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
