"""The whole consent check, end to end, on synthetic talents.

Usage: python bench/consent_verification.py [--genuine 5] [--impostor-reps 2] [--replays 2]
       [--espeak-impostors 2] [--seed 0] [--asr-threads 0] [--json out.json]

Every trial is ``speech.consent.verify_consent`` on WAV bytes (decode, audio quality, ASR
statement / challenge / name / company, speaker, per-recording speaker, duplicate and stock
voice), at the documented thresholds (``ConsentLimits()``), not the speaker score alone.

- Statement: ``TEMPLATE`` with talent "Dana Fischer", company "Acme Limited" and a fresh
  ``make_challenge(random.Random(seed))`` per trial (the seeds are consecutive from ``--seed``
  and stored with each trial, so every run is reproducible).
- Takes sound like real ones: each rendering is padded with 0.5 s of Gaussian room tone at
  -70 dBFS on both sides (as ``voices/tests/journey.py`` ``take()``), encoded as WAV with
  ``speech.audio.encode``.
- Enrolment per talent: ``embed_recording`` of 5 of its ``TRAIN_SENTENCES`` renderings
  (padded likewise); the stock embedding is the mean of 3 stock Piper renderings;
  ``other_talents={}``.
- genuine: each talent of ``TALENTS`` reads ``--genuine`` fresh statements;
- impostor: for each talent, the 3 other talents, the stock Piper voice, the ``--espeak-impostors``
  espeak ``IMPOSTORS`` closest to the talent and the closest transformed-Piper impostor
  (closeness: mean speaker score of 2 held-out sentences against the talent's enrolment,
  measured here) each read ``--impostor-reps`` fresh statements of that talent;
- replay: the talent's genuine recording of an older statement (an earlier genuine trial)
  submitted against a fresh statement (another challenge).

Prints a markdown summary and writes every trial (codes, scores, transcript, time) as JSON.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter
from pathlib import Path

if __package__ in (None, ""):
    ROOT = Path(__file__).resolve().parents[1]
    sys.path[:0] = [str(ROOT), str(ROOT / "platform")]

import numpy as np  # noqa: E402

from speech import audio, consent, speaker  # noqa: E402
from speech.testing import talents as T  # noqa: E402

TEMPLATE = (
    "I, {talent}, am aware that recordings of my voice will be used by {company} to create and "
    "use a synthetic version of my voice. Challenge: {challenge}."
)
TALENT_NAME = "Dana Fischer"
COMPANY = "Acme Limited"
SR = T.SAMPLE_RATE
ROOM_TONE_DBFS = -70.0
ENROL = 5
# The app's stock reference sentences (voices.services.catalogue.STOCK_REFERENCE_SENTENCES).
STOCK_SENTENCES = (
    "Thank you for calling, how can I help you today?",
    "The weather this weekend looks bright and mild.",
    "Please remember to bring your ticket to the counter.",
)
SPEAKER_SWEEP = (0.86, 0.88, 0.90, speaker.VERIFY_THRESHOLD)


def take(voice: T.Talent, text: str) -> np.ndarray:
    """``voice`` saying ``text`` with 0.5 s of room tone before and after (journey.take)."""
    rng = np.random.default_rng(len(text))
    tone = (rng.standard_normal(SR // 2) * 10 ** (ROOM_TONE_DBFS / 20)).astype(np.float32)
    return np.concatenate([tone, np.asarray(T.render(voice, text)), tone])


def q(a, p):
    return round(float(np.percentile(a, p)), 4) if len(a) else None


class Trials:
    def __init__(self, seed: int, asr_threads: int):
        self.next_seed = seed
        self.asr_threads = asr_threads
        self.rows: list[dict] = []

    def fresh(self) -> tuple[int, str, str]:
        seed = self.next_seed
        self.next_seed += 1
        challenge = consent.make_challenge(random.Random(seed))
        statement = consent.render_statement(
            TEMPLATE, talent=TALENT_NAME, company=COMPANY, challenge=challenge
        )
        return seed, challenge, statement

    def run(self, kind, talent, voice, data, seed, challenge, statement, enrol, stock, **extra):
        t0 = time.perf_counter()
        r = consent.verify_consent(
            data,
            statement=statement,
            talent_name=TALENT_NAME,
            company=COMPANY,
            challenge=challenge,
            training_embeddings=enrol,
            other_talents={},
            stock_embedding=stock,
            asr_threads=self.asr_threads,
        )
        dt = time.perf_counter() - t0
        sc = r.evidence["scores"]
        a = r.evidence.get("assessment", {})
        row = {
            "kind": kind,
            "talent": talent,
            "voice": voice,
            "seed": seed,
            "challenge": challenge,
            "passed": r.passed,
            "codes": r.codes,
            "speaker": sc.get("speaker"),
            "single_min": min(sc["training_single"]) if sc.get("training_single") else None,
            "stock": sc.get("stock_voice"),
            "statement_wer": sc.get("statement_wer"),
            "challenge_match": sc.get("challenge_match"),
            "snr_db": a.get("snr_db"),
            "duration_s": r.duration_s,
            "transcript": r.transcript,
            "verify_s": round(dt, 3),
            **extra,
        }
        self.rows.append(row)
        mark = "pass" if r.passed else "FAIL " + ",".join(r.codes)
        print(
            f"  {kind:8s} {talent:5s} <- {voice:16s} spk={row['speaker']} wer="
            f"{row['statement_wer']} {dt:5.1f}s {mark}",
            flush=True,
        )
        return row


def code_counts(rows) -> dict[str, int]:
    return dict(Counter(c for r in rows for c in r["codes"]).most_common())


def fmt_codes(counts: dict[str, int]) -> str:
    return ", ".join(f"`{c}` {n}" for c, n in counts.items()) or "-"


def passes_at(row, thr: float) -> bool:
    """Would the trial pass with speaker threshold ``thr`` (everything else unchanged)?"""
    others = [c for c in row["codes"] if c != "speaker_mismatch"]
    return not others and row["speaker"] is not None and row["speaker"] >= thr


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--genuine", type=int, default=5, help="genuine statements per talent")
    ap.add_argument("--impostor-reps", type=int, default=2, help="statements per impostor voice")
    ap.add_argument("--replays", type=int, default=2, help="replay trials per talent")
    ap.add_argument("--espeak-impostors", type=int, default=2, help="closest espeak per talent")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--asr-threads", type=int, default=0, help="0: CTranslate2 chooses (app)")
    ap.add_argument("--json")
    args = ap.parse_args()
    if args.replays > args.genuine:
        ap.error("--replays cannot exceed --genuine (replays reuse genuine recordings)")
    import torch

    torch.set_num_threads(1)
    t_start = time.perf_counter()
    lim = consent.ConsentLimits()

    # enrolment and stock reference
    t0 = time.perf_counter()
    enrol = {
        t.name: [consent.embed_recording(take(t, s), SR) for s in T.TRAIN_SENTENCES[:ENROL]]
        for t in T.TALENTS
    }
    means = {n: speaker.mean_embedding(e) for n, e in enrol.items()}
    stock = speaker.mean_embedding([speaker.embed(T.stock(s), SR) for s in STOCK_SENTENCES])
    # the closest impostors per talent (held-out sentences, speaker score only)
    probe = {
        v.name: [consent.embed_recording(take(v, s), SR) for s in T.HELD_OUT_SENTENCES[:2]]
        for v in T.IMPOSTORS
        if v.name != "imp-piper-stock"
    }
    selection: dict[str, list[str]] = {}
    closeness: dict[str, dict[str, float]] = {}
    for t in T.TALENTS:
        score = {
            n: round(float(np.mean([speaker.cosine(means[t.name], e) for e in es])), 4)
            for n, es in probe.items()
        }
        closeness[t.name] = dict(sorted(score.items(), key=lambda kv: -kv[1]))
        kinds = {v.name: v.kind for v in T.IMPOSTORS}
        esp = [n for n in closeness[t.name] if kinds[n] == "espeak"][: args.espeak_impostors]
        pip = [n for n in closeness[t.name] if kinds[n] == "piper"][:1]
        others = [o.name for o in T.TALENTS if o.name != t.name]
        selection[t.name] = [*others, "imp-piper-stock", *esp, *pip]
    setup_s = time.perf_counter() - t0
    print(f"enrolment, stock and impostor selection: {setup_s:.1f} s", flush=True)
    for t, vs in selection.items():
        print(f"  {t}: {', '.join(vs)}", flush=True)

    trials = Trials(args.seed, args.asr_threads)
    genuine_takes: dict[str, list[tuple[bytes, int, str]]] = {}
    print("genuine", flush=True)
    for t in T.TALENTS:
        genuine_takes[t.name] = []
        for _ in range(args.genuine):
            seed, ch, st = trials.fresh()
            data = audio.encode(take(t, st), SR, "wav")
            genuine_takes[t.name].append((data, seed, ch))
            trials.run("genuine", t.name, t.name, data, seed, ch, st, enrol[t.name], stock)
    print("replay", flush=True)
    for t in T.TALENTS:
        for data, old_seed, old_ch in genuine_takes[t.name][: args.replays]:
            seed, ch, st = trials.fresh()
            trials.run(
                "replay",
                t.name,
                t.name,
                data,
                seed,
                ch,
                st,
                enrol[t.name],
                stock,
                replayed_seed=old_seed,
                replayed_challenge=old_ch,
            )
    print("impostor", flush=True)
    for t in T.TALENTS:
        for vname in selection[t.name]:
            v = T.by_name(vname)
            for _ in range(args.impostor_reps):
                seed, ch, st = trials.fresh()
                data = audio.encode(take(v, st), SR, "wav")
                trials.run("impostor", t.name, vname, data, seed, ch, st, enrol[t.name], stock)
    wall = time.perf_counter() - t_start

    rows = trials.rows
    by = {k: [r for r in rows if r["kind"] == k] for k in ("genuine", "impostor", "replay")}
    gen, imp, rep = by["genuine"], by["impostor"], by["replay"]
    verify_s = [r["verify_s"] for r in rows]
    res = {
        "command": "python bench/consent_verification.py " + " ".join(sys.argv[1:]),
        "template": TEMPLATE,
        "thresholds": {
            "speaker": lim.speaker_threshold,
            "single": lim.single_threshold,
            "stock": lim.stock_threshold,
            "max_statement_wer": lim.max_statement_wer,
            "min_snr_db": lim.quality.min_snr_db,
        },
        "enrolment_recordings": ENROL,
        "impostor_selection": selection,
        "impostor_closeness": closeness,
        "genuine": {
            "trials": len(gen),
            "passed": sum(r["passed"] for r in gen),
            "false_reject_rate": round(float(np.mean([not r["passed"] for r in gen])), 4),
            "codes": code_counts(gen),
            "per_talent": {
                t.name: {
                    "trials": len(g),
                    "passed": sum(r["passed"] for r in g),
                    "false_reject_rate": round(float(np.mean([not r["passed"] for r in g])), 4),
                    "codes": code_counts(g),
                    "speaker_min": min(r["speaker"] for r in g),
                    "speaker_median": q([r["speaker"] for r in g], 50),
                    "wer_max": max(r["statement_wer"] for r in g),
                }
                for t in T.TALENTS
                for g in [[r for r in gen if r["talent"] == t.name]]
            },
        },
        "impostor": {
            "trials": len(imp),
            "false_accepts": sum(r["passed"] for r in imp),
            "codes": code_counts(imp),
            "speaker_max": max(r["speaker"] for r in imp),
            "closest": sorted(
                (
                    {"talent": r["talent"], "voice": r["voice"], "speaker": r["speaker"]}
                    for r in imp
                ),
                key=lambda d: -d["speaker"],
            )[:5],
            "per_talent": {
                t.name: {
                    "trials": len(g),
                    "false_accepts": sum(r["passed"] for r in g),
                    "codes": code_counts(g),
                    "speaker_max": max(r["speaker"] for r in g),
                    "speaker_max_voice": max(g, key=lambda r: r["speaker"])["voice"],
                }
                for t in T.TALENTS
                for g in [[r for r in imp if r["talent"] == t.name]]
            },
        },
        "replay": {
            "trials": len(rep),
            "accepted": sum(r["passed"] for r in rep),
            "rejected_challenge_missing": sum("challenge_missing" in r["codes"] for r in rep),
            "codes": code_counts(rep),
        },
        "speaker_threshold_sweep": {
            f"{thr:.3f}": {
                "genuine_pass_rate": round(float(np.mean([passes_at(r, thr) for r in gen])), 4),
                "impostor_false_accepts": sum(passes_at(r, thr) for r in imp),
            }
            for thr in SPEAKER_SWEEP
        },
        "timing": {
            "wall_s": round(wall, 1),
            "setup_s": round(setup_s, 1),
            "trials": len(rows),
            "verify_mean_s": round(float(np.mean(verify_s)), 3),
            "verify_median_s": q(verify_s, 50),
            "verify_max_s": round(float(np.max(verify_s)), 3),
            "statement_duration_mean_s": round(float(np.mean([r["duration_s"] for r in rows])), 2),
        },
        "trials": rows,
    }
    print_tables(res)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))


def print_tables(res: dict) -> None:
    g, i, r, tm = res["genuine"], res["impostor"], res["replay"], res["timing"]
    out = [
        "",
        "| trials | count | passed | rejected | rejections by code |",
        "|---|---:|---:|---:|---|",
        f"| genuine (own statement) | {g['trials']} | {g['passed']} | "
        f"{g['trials'] - g['passed']} (FRR {g['false_reject_rate']:.0%}) | "
        f"{fmt_codes(g['codes'])} |",
        f"| impostor (other voice, talent's statement) | {i['trials']} | "
        f"**{i['false_accepts']}** (false accepts) | {i['trials'] - i['false_accepts']} | "
        f"{fmt_codes(i['codes'])} |",
        f"| replay (older genuine take, fresh challenge) | {r['trials']} | {r['accepted']} | "
        f"{r['trials'] - r['accepted']} | {fmt_codes(r['codes'])} |",
        "",
        "| talent | genuine passed | FRR | genuine rejections | speaker min / median | "
        "impostor trials | false accepts | closest impostor (speaker) |",
        "|---|---:|---:|---|---|---:|---:|---|",
    ]
    for name, pt in g["per_talent"].items():
        it = i["per_talent"][name]
        out.append(
            f"| {name} | {pt['passed']}/{pt['trials']} | {pt['false_reject_rate']:.0%} | "
            f"{fmt_codes(pt['codes'])} | {pt['speaker_min']:.3f} / {pt['speaker_median']:.3f} | "
            f"{it['trials']} | {it['false_accepts']} | {it['speaker_max_voice']} "
            f"({it['speaker_max']:.3f}) |"
        )
    out += [
        "",
        "| speaker threshold | genuine pass rate | impostor false accepts |",
        "|---|---:|---:|",
    ]
    for thr, s in res["speaker_threshold_sweep"].items():
        out.append(
            f"| {thr} | {s['genuine_pass_rate']:.0%} | "
            f"{s['impostor_false_accepts']}/{i['trials']} |"
        )
    out += [
        "",
        f"Wall {tm['wall_s']} s (setup {tm['setup_s']} s), {tm['trials']} trials, verification "
        f"mean {tm['verify_mean_s']} s / median {tm['verify_median_s']} s / max "
        f"{tm['verify_max_s']} s per trial (statements {tm['statement_duration_mean_s']} s).",
    ]
    print("\n".join(out), flush=True)


if __name__ == "__main__":
    main()
