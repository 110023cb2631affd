"""Calibrate the consent speaker-verification threshold on synthetic talents.

Usage: python bench/speaker_calibration.py [--enrol 5] [--margin 0.01] [--json out.json]

For each talent of ``speech.testing.talents.TALENTS``: the enrolment is the unit-norm mean of
the resemblyzer embeddings of its first ``--enrol`` training recordings. Trials are single
utterances (the consent-like statements and the held-out sentences):

- genuine: the same talent;
- impostor: every other talent and every voice of ``IMPOSTORS`` (other espeak variants, the
  stock Piper voice, Piper with other pitch/formant shifts), saying the same sentences.

The threshold is the highest impostor score plus ``--margin`` (0 false accepts on this set);
the false-reject rate is reported at it, with the equal error rate for reference. It also
reports the per-recording check the consent flow needs: each training recording against the
consent recording's embedding (single vs single).
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

from speech import speaker  # noqa: E402
from speech.testing import talents as T  # noqa: E402


def q(a, p):
    return float(np.percentile(a, p)) if len(a) else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--enrol", type=int, default=5)
    ap.add_argument("--margin", type=float, default=0.01)
    ap.add_argument("--json")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    sr = T.SAMPLE_RATE
    trials = (*T.CONSENT_SENTENCES, *T.HELD_OUT_SENTENCES)
    voices = (*T.TALENTS, *T.IMPOSTORS)
    trial_emb = {v.name: [speaker.embed(T.render(v, s), sr) for s in trials] for v in voices}
    enrol_emb = {
        t.name: [speaker.embed(T.render(t, s), sr) for s in T.TRAIN_SENTENCES[: args.enrol]]
        for t in T.TALENTS
    }
    genuine, impostor, worst = [], [], {}
    for t in T.TALENTS:
        enrol = speaker.mean_embedding(enrol_emb[t.name])
        genuine += [speaker.cosine(enrol, e) for e in trial_emb[t.name]]
        for v in voices:
            if v.name == t.name:
                continue
            sc = [speaker.cosine(enrol, e) for e in trial_emb[v.name]]
            impostor += sc
            worst[f"{t.name}<-{v.name}"] = max(sc)
    genuine, impostor = np.array(genuine), np.array(impostor)
    thr = round(float(impostor.max()) + args.margin, 3)
    frr = float(np.mean(genuine < thr))
    grid = np.linspace(0.5, 1.0, 501)
    far_g = np.array([np.mean(impostor >= g) for g in grid])
    frr_g = np.array([np.mean(genuine < g) for g in grid])
    k = int(np.argmin(np.abs(far_g - frr_g)))
    # training recording vs consent recording (single vs single), same and different talent
    single_same, single_diff = [], []
    for t in T.TALENTS:
        consent = trial_emb[t.name][0]
        single_same += [speaker.cosine(consent, e) for e in enrol_emb[t.name]]
        for o in T.TALENTS:
            if o.name != t.name:
                single_diff += [speaker.cosine(consent, e) for e in enrol_emb[o.name]]
    res = {
        "enrolment_utterances": args.enrol,
        "talents": [t.name for t in T.TALENTS],
        "impostor_voices": len(voices) - 1,
        "genuine_trials": len(genuine),
        "impostor_trials": len(impostor),
        "genuine": {
            "min": float(genuine.min()),
            "p5": q(genuine, 5),
            "median": q(genuine, 50),
            "max": float(genuine.max()),
        },
        "impostor": {
            "min": float(impostor.min()),
            "median": q(impostor, 50),
            "p95": q(impostor, 95),
            "max": float(impostor.max()),
        },
        "closest_impostors": sorted(worst.items(), key=lambda kv: -kv[1])[:5],
        "threshold": thr,
        "false_accepts_at_threshold": int(np.sum(impostor >= thr)),
        "false_reject_rate_at_threshold": frr,
        "eer": float((far_g[k] + frr_g[k]) / 2),
        "eer_threshold": float(grid[k]),
        "per_talent_frr": {
            t.name: float(np.mean(np.array(genuine[i * len(trials) : (i + 1) * len(trials)]) < thr))
            for i, t in enumerate(T.TALENTS)
        },
        "training_vs_consent_single": {
            "same_min": float(np.min(single_same)),
            "same_median": q(single_same, 50),
            "diff_median": q(single_diff, 50),
            "diff_max": float(np.max(single_diff)),
        },
        "sweep": {
            f"{g:.3f}": {
                "false_accepts": int(np.sum(impostor >= g)),
                "false_reject_rate": round(float(np.mean(genuine < g)), 4),
            }
            for g in (0.84, 0.86, 0.87, 0.88, 0.89, 0.90, thr)
        },
        "seconds": round(time.perf_counter() - t0, 1),
    }
    print(json.dumps(res, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
