"""Watermark robustness / quality / speed bench.

Modes (pick one):
  --builtin                 in-process BuiltinWatermark (fast, for iteration)
  --audiowmark              the ``audiowmark`` CLI (128-bit payload), if installed
  --embed-cmd T --detect-cmd T
                            any watermarker behind two command templates, e.g.
                            --embed-cmd \
                              "python manage.py watermark_embed {in} {out} --payload {payload}"
                            --detect-cmd "python manage.py watermark_detect {file}"
                            (detect prints JSON with at least "verdict" and "payload" hex)

Example (the numbers in docs/watermark.md):
  python -m bench.watermark.run --builtin --lengths 1,2,3,5,10 --n 40 --unmarked 1000 \\
      --json /tmp/wm-bench.json

Reports, per attack x clip length, the exact payload recovery rate; false
identifications on unmarked 3 s clips; PESQ-WB (16 kHz), SNR, embed speed (x real
time) and detect time.  Prints a markdown table and writes JSON.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from bench.watermark import attacks, corpus

BENCH_KEY = hashlib.sha256(b"timbre watermark bench key").digest()
SR = corpus.SR


# ----------------------------------------------------------------------------- drivers


class Driver:
    payload_len = 5

    def embed(self, src: Path, dst: Path, payload: bytes) -> None:
        raise NotImplementedError

    def detect(self, path: Path) -> dict:
        raise NotImplementedError


class BuiltinDriver(Driver):
    def __init__(self, strength: float):
        from speech.watermark.builtin import BuiltinWatermark

        self.wm = BuiltinWatermark(strength)
        self.payload_len = self.wm.payload_bits // 8

    def embed(self, src: Path, dst: Path, payload: bytes) -> None:
        x, sr = sf.read(str(src), dtype="float32")
        sf.write(str(dst), self.wm.embed(x, sr, payload, BENCH_KEY), sr, subtype="PCM_16")

    def detect(self, path: Path) -> dict:
        x, sr = sf.read(str(path), dtype="float32")
        return self.wm.detect(x, sr, {"bench": BENCH_KEY}).to_dict()


class CommandDriver(Driver):
    def __init__(self, embed_cmd: str, detect_cmd: str, payload_len: int):
        self.embed_cmd, self.detect_cmd, self.payload_len = embed_cmd, detect_cmd, payload_len

    def embed(self, src: Path, dst: Path, payload: bytes) -> None:
        cmd = self.embed_cmd.format(
            **{"in": shlex.quote(str(src)), "out": shlex.quote(str(dst)), "payload": payload.hex()}
        )
        subprocess.run(cmd, shell=True, check=True, capture_output=True)

    def detect(self, path: Path) -> dict:
        cmd = self.detect_cmd.format(file=shlex.quote(str(path)))
        out = subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout
        for line in reversed(out.strip().splitlines()):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
        return {"verdict": "error", "payload": None}


class AudiowmarkDriver(Driver):
    payload_len = 16

    def __init__(self):
        if not shutil.which("audiowmark"):
            sys.exit("audiowmark binary not found")
        self.expected: dict[str, str] = {}

    def embed(self, src: Path, dst: Path, payload: bytes) -> None:
        subprocess.run(
            ["audiowmark", "add", str(src), str(dst), payload.hex()],
            check=True,
            capture_output=True,
        )

    def detect(self, path: Path) -> dict:
        out = subprocess.run(
            ["audiowmark", "get", str(path)], capture_output=True, text=True
        ).stdout
        found = None
        for line in out.splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "pattern":
                found = parts[1] if len(parts[1]) == 32 else parts[2]
                break
        return {"verdict": "watermarked" if found else "not_detected", "payload": found}


def make_driver(args: argparse.Namespace) -> Driver:
    if args.builtin:
        return BuiltinDriver(args.strength)
    if args.audiowmark:
        return AudiowmarkDriver()
    if args.embed_cmd and args.detect_cmd:
        return CommandDriver(args.embed_cmd, args.detect_cmd, args.payload_bytes)
    sys.exit("choose --builtin, --audiowmark, or --embed-cmd + --detect-cmd")


# ----------------------------------------------------------------------------- metrics


def snr_db(x: np.ndarray, y: np.ndarray) -> float:
    n = min(len(x), len(y))
    d = float(np.sum((y[:n].astype(np.float64) - x[:n]) ** 2))
    e = float(np.sum(x[:n].astype(np.float64) ** 2))
    return float("inf") if d == 0 else 10 * np.log10(e / d)


def pesq_wb(x: np.ndarray, y: np.ndarray, sr: int) -> float | None:
    try:
        from pesq import pesq
    except ImportError:
        return None
    a = resample_poly(x, 16000 // 50, sr // 50) if sr % 50 == 0 else x
    b = resample_poly(y, 16000 // 50, sr // 50) if sr % 50 == 0 else y
    try:
        return float(pesq(16000, a.astype(np.float64), b.astype(np.float64), "wb"))
    except Exception:  # noqa: BLE001 - pesq raises on no-utterance clips
        return None


# ----------------------------------------------------------------------------- jobs

_DRIVER: Driver | None = None


def _init(args_dict: dict) -> None:
    global _DRIVER
    _DRIVER = make_driver(argparse.Namespace(**args_dict))


def marked_job(job: tuple) -> dict:
    label, x, seconds, attack_names = job
    drv = _DRIVER
    payload = hashlib.sha256(label.encode()).digest()[: drv.payload_len]
    res = {"label": label, "seconds": seconds, "payload": payload.hex(), "attacks": {}}
    with tempfile.TemporaryDirectory() as td:
        src, dst = Path(td) / "in.wav", Path(td) / "marked.wav"
        sf.write(str(src), x, SR, subtype="FLOAT")
        t0 = time.perf_counter()
        try:
            drv.embed(src, dst, payload)
        except Exception as e:  # noqa: BLE001 - record embed failures (fail closed)
            res["embed_error"] = str(e)[:200]
            return res
        res["embed_s"] = time.perf_counter() - t0
        y, _ = sf.read(str(dst), dtype="float32")
        res["snr"] = snr_db(x, y)
        res["pesq"] = pesq_wb(x, y, SR)
        for name in attack_names:
            att = Path(td) / f"att_{name}.wav"
            try:
                attacks.apply(name, dst, att)
            except subprocess.CalledProcessError as e:
                res["attacks"][name] = {"error": e.stderr.decode()[-200:] if e.stderr else "err"}
                continue
            t0 = time.perf_counter()
            d = drv.detect(att)
            dt = time.perf_counter() - t0
            res["attacks"][name] = {
                "ok": d.get("payload") == payload.hex(),
                "verdict": d.get("verdict"),
                "detect_s": dt,
                "reason": d.get("reason", ""),
            }
    return res


def unmarked_job(job: tuple) -> dict:
    label, x = job
    with tempfile.TemporaryDirectory() as td:
        src = Path(td) / "in.wav"
        sf.write(str(src), x, SR, subtype="PCM_16")
        t0 = time.perf_counter()
        d = _DRIVER.detect(src)
        return {
            "label": label,
            "verdict": d.get("verdict"),
            "payload": d.get("payload"),
            "reason": d.get("reason", ""),
            "detect_s": time.perf_counter() - t0,
        }


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    mode = ap.add_argument_group("mode")
    mode.add_argument("--builtin", action="store_true")
    mode.add_argument("--audiowmark", action="store_true")
    mode.add_argument("--embed-cmd")
    mode.add_argument("--detect-cmd")
    ap.add_argument("--payload-bytes", type=int, default=5, help="payload size for command mode")
    ap.add_argument("--strength", type=float, default=1.0, help="builtin strength")
    ap.add_argument("--lengths", default="1,2,3,5,10")
    ap.add_argument("--n", type=int, default=40, help="marked clips per length")
    ap.add_argument("--unmarked", type=int, default=1000, help="unmarked 3 s clips")
    ap.add_argument("--attacks", default="all", help="comma list; 'all' = whole suite")
    ap.add_argument(
        "--attack-lengths",
        default="3",
        help="lengths that get every attack (others: no attack only); 'all'",
    )
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--json", default="wm-bench.json")
    args = ap.parse_args(argv)

    drv_args = {
        k: getattr(args, k)
        for k in ("builtin", "audiowmark", "embed_cmd", "detect_cmd", "payload_bytes", "strength")
    }
    lengths = [float(v) for v in args.lengths.split(",") if v]
    all_attacks = list(attacks.ATTACKS)
    chosen = all_attacks if args.attacks == "all" else args.attacks.split(",")
    att_lengths = (
        lengths
        if args.attack_lengths == "all"
        else [float(v) for v in args.attack_lengths.split(",")]
    )
    corpus.pools()  # generate the cache once, before forking workers

    jobs = []
    for sec in lengths:
        names = chosen if sec in att_lengths else ["none"]
        for label, x in corpus.clips(sec, args.n, seed=0):
            jobs.append((label, x, sec, names))
    unmarked = corpus.clips(3.0, args.unmarked, seed=12345, min_active=0.5, mix_voices=True)

    t_start = time.time()
    with ProcessPoolExecutor(args.jobs, initializer=_init, initargs=(drv_args,)) as ex:
        marked = list(ex.map(marked_job, jobs, chunksize=1))
        clean = list(ex.map(unmarked_job, unmarked, chunksize=4))
    wall = time.time() - t_start

    # ---- aggregate
    table: dict[str, dict[str, float]] = {}
    for name in all_attacks:
        for sec in lengths:
            rs = [
                r["attacks"][name]
                for r in marked
                if r["seconds"] == sec and name in r.get("attacks", {})
            ]
            fails = [r for r in marked if r["seconds"] == sec and "embed_error" in r]
            if not rs and not (fails and name == "none"):
                continue
            ok = sum(1 for a in rs if a.get("ok"))
            table.setdefault(name, {})[f"{sec:g}s"] = ok / (len(rs) + len(fails))
    emb = [r for r in marked if "embed_s" in r]
    rt = [r["seconds"] / r["embed_s"] for r in emb if r["seconds"] == 3.0] or [
        r["seconds"] / r["embed_s"] for r in emb
    ]
    det3 = [
        a["detect_s"]
        for r in marked
        if r["seconds"] == 3.0
        for a in r["attacks"].values()
        if "detect_s" in a
    ]
    pesqs = [r["pesq"] for r in emb if r.get("pesq") is not None]
    snrs = [r["snr"] for r in emb]
    fp = [c for c in clean if c["verdict"] == "watermarked"]
    summary = {
        "mode": "builtin" if args.builtin else "audiowmark" if args.audiowmark else "command",
        "strength": args.strength,
        "clips_per_length": args.n,
        "embed_failures": {
            f"{s:g}s": sum(1 for r in marked if r["seconds"] == s and "embed_error" in r)
            for s in lengths
        },
        "unmarked_clips": len(clean),
        "false_identifications": len(fp),
        "unmarked_verdicts": {
            v: sum(1 for c in clean if c["verdict"] == v) for v in {c["verdict"] for c in clean}
        },
        "pesq_wb_mean": float(np.mean(pesqs)) if pesqs else None,
        "pesq_wb_min": float(np.min(pesqs)) if pesqs else None,
        "snr_mean": float(np.mean(snrs)) if snrs else None,
        "snr_min": float(np.min(snrs)) if snrs else None,
        "embed_x_realtime_median": float(np.median(rt)) if rt else None,
        "detect_s_3s_median": float(np.median(det3)) if det3 else None,
        "detect_s_3s_p95": float(np.percentile(det3, 95)) if det3 else None,
        "wall_s": wall,
    }
    Path(args.json).write_text(
        json.dumps(
            {"summary": summary, "recovery": table, "marked": marked, "unmarked": clean},
            indent=1,
            default=str,
        )
    )

    cols = [f"{s:g}s" for s in lengths]
    print("| attack | " + " | ".join(cols) + " |")
    print("|---|" + "---|" * len(cols))
    for name, row in table.items():
        cells = [f"{100 * row[c]:.0f}%" if c in row else "" for c in cols]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print()
    for k, v in summary.items():
        print(f"- {k}: {round(v, 3) if isinstance(v, float) else v}")
    print(f"\nJSON: {args.json}")


if __name__ == "__main__":
    main()
