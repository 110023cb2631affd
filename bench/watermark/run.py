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

The issue-11 matrix (the numbers in docs/watermark.md; `make bench-watermark`):
  python -m bench.watermark.run --builtin --matrix --n 24 --unmarked 1000 --jobs 2 \\
      --json var/wm-bench.json --md var/wm-bench.md [--before OLD.json]
  python -m bench.watermark.run --from-json var/wm-bench.json --md report.md [--before OLD.json]
                            (re-render a report from stored figures; runs nothing)

Reports, per attack x clip length, the exact payload recovery rate; false
identifications on unmarked 3 s clips (``--unmarked`` speech clips *and* as many
synthetic music clips); PESQ-WB (16 kHz), SNR; embed speed (x real time) and detect
time for 3 s on one core (measured serially, after the parallel part).  Prints a
markdown table, writes JSON and, with ``--md``, a markdown report that sets every
goal of issue 11 against its measured value.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import re
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
MATRIX_LENGTHS = [1.0, 1.5, 2.0, 3.0, 5.0, 10.0]
UNMARKED_SECONDS = 3.0


def _one_thread() -> None:
    """Pin BLAS to one thread, so that every worker (and the cost phase) uses one core."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl ships with the lock
        return
    threadpool_limits(1)


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


_Z = re.compile(r"\bz=(-?[0-9.]+)")


def detector_score(d: dict) -> float | None:
    """The detector's sync statistic: a ``z``/``score`` field if the detection exposes one,
    else the ``z=`` figure the built-in backend writes into ``reason``."""
    for k in ("z", "score", "sync_z"):
        if isinstance(d.get(k), int | float):
            return float(d[k])
    m = _Z.search(str(d.get("reason") or ""))
    return float(m.group(1)) if m else None


# ----------------------------------------------------------------------------- jobs

_DRIVER: Driver | None = None


def _init(args_dict: dict) -> None:
    global _DRIVER
    _one_thread()
    _DRIVER = make_driver(argparse.Namespace(**args_dict))


def _safe_detect(drv: Driver, path: Path) -> dict:
    try:
        return drv.detect(path)
    except Exception as e:  # noqa: BLE001 - a crashing detector is a failed detection
        return {"verdict": "error", "payload": None, "reason": f"{type(e).__name__}: {e}"[:200]}


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
            d = _safe_detect(drv, att)
            dt = time.perf_counter() - t0
            res["attacks"][name] = {
                "ok": d.get("payload") == payload.hex(),
                "verdict": d.get("verdict"),
                "detect_s": dt,
                "z": detector_score(d),
                "reason": d.get("reason", ""),
            }
    return res


def unmarked_job(job: tuple) -> dict:
    kind, label, x = job
    if x is None:  # music is synthesised in the worker: (seed, index) in the label
        seed, i = (int(v) for v in label.split(":"))
        label, x = corpus.music_clip_at(UNMARKED_SECONDS, seed, i)
    with tempfile.TemporaryDirectory() as td:
        src = Path(td) / "in.wav"
        sf.write(str(src), x, SR, subtype="PCM_16")
        t0 = time.perf_counter()
        d = _safe_detect(_DRIVER, src)
        return {
            "kind": kind,
            "label": label,
            "verdict": d.get("verdict"),
            "payload": d.get("payload"),
            "confidence": d.get("confidence"),
            "z": detector_score(d),
            "reason": d.get("reason", ""),
            "detect_s": time.perf_counter() - t0,
        }


def cost_phase(drv: Driver, clips: list[tuple[str, np.ndarray]]) -> dict:
    """Serial timings in this process (BLAS pinned to one thread): one core, nothing else of
    the bench running.  Median over ``clips`` (3 s speech)."""
    _one_thread()
    emb, det = [], []
    with tempfile.TemporaryDirectory() as td:
        for i, (label, x) in enumerate(clips):
            src, dst = Path(td) / f"in{i}.wav", Path(td) / f"m{i}.wav"
            sf.write(str(src), x, SR, subtype="FLOAT")
            payload = hashlib.sha256(label.encode()).digest()[: drv.payload_len]
            try:
                drv.embed(src, dst, payload)  # warm-up (caches, imports)
                t0 = time.perf_counter()
                drv.embed(src, dst, payload)
                emb.append(len(x) / SR / (time.perf_counter() - t0))
            except Exception:  # noqa: BLE001 - refused clips are reported by the main phase
                continue
            t0 = time.perf_counter()
            drv.detect(dst)
            det.append(time.perf_counter() - t0)
    return {
        "cost_clips": len(emb),
        "embed_x_realtime_1core": float(np.median(emb)) if emb else None,
        "detect_s_3s_1core": float(np.median(det)) if det else None,
        "detect_s_3s_1core_max": float(np.max(det)) if det else None,
    }


# ----------------------------------------------------------------------------- goals

# Issue 11's goal table, row by row: (goal, [(attack, length)], target fraction).
GOALS: list[tuple[str, list[tuple[str, float]], float]] = [
    (
        "3 s: no attack, mp3 64k/128k, AAC, resample, telephone band, volume, low-pass",
        [
            ("none", 3.0),
            ("mp3_64k", 3.0),
            ("mp3_128k", 3.0),
            ("aac_96k", 3.0),
            ("resample_16k", 3.0),
            ("telephone_8k", 3.0),
            ("telephone_g711", 3.0),
            ("volume_0.5", 3.0),
            ("volume_2_clip", 3.0),
            ("lowpass_4k", 3.0),
        ],
        0.98,
    ),
    (
        "3 s: Opus 32k and 24k, ogg q2",
        [("opus_32k", 3.0), ("opus_24k", 3.0), ("ogg_q2", 3.0)],
        0.90,
    ),
    ("3 s: white noise 20 dB SNR", [("noise_20db", 3.0)], 0.80),
    (
        "3 s: tempo ±2 % and speed ±2 % (sox)",
        [("tempo_+2", 3.0), ("tempo_-2", 3.0), ("speed_+2", 3.0), ("speed_-2", 3.0)],
        0.90,
    ),
    ("3 s: first 1.3 s cut away", [("crop_start_1.3s", 3.0)], 0.90),
    (
        "1.5 s and 2 s clips, no attack and mp3 64k",
        [("none", 1.5), ("mp3_64k", 1.5), ("none", 2.0), ("mp3_64k", 2.0)],
        0.95,
    ),
]


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.0f}%"


def _num(v, fmt: str = ".2f") -> str:
    return "–" if v is None else format(v, fmt)


def _status_min(
    v: float | None, target: float, unit: str = "", scale: float = 1.0, fmt: str = ".3g"
) -> str:
    if v is None:
        return "not measured"
    if v >= target - 1e-12:
        return "**met**"
    return f"missed by {format(scale * (target - v), fmt)}{unit}"


def _status_max(v: float | None, target: float, unit: str = "") -> str:
    if v is None:
        return "not measured"
    return "**met**" if v <= target + 1e-12 else f"missed by {v - target:.3g}{unit}"


def goal_rows(res: dict) -> list[dict]:
    """Every goal of issue 11 -> measured value -> met / missed by how much."""
    rec, s = res.get("recovery", {}), res.get("summary", {})
    rows = []
    for goal, cells, target in GOALS:
        for name, sec in cells:
            v = rec.get(name, {}).get(f"{sec:g}s")
            rows.append(
                {
                    "goal": goal,
                    "condition": f"{name} @ {sec:g} s",
                    "target": f"≥ {100 * target:.0f}%",
                    "value": v,
                    "shown": _pct(v),
                    "status": _status_min(v, target, " pts", 100, ".1f"),
                }
            )
    kinds = s.get("unmarked_by_kind") or {}
    total = s.get("unmarked_clips")
    fids = s.get("false_identifications")
    for kind, k in sorted(kinds.items()):
        rows.append(
            {
                "goal": "1,000+ unmarked clips, speech and music",
                "condition": f"false IDs, {k['clips']} unmarked {kind} clips",
                "target": "0",
                "value": k["false_identifications"],
                "shown": str(k["false_identifications"]),
                "status": _status_max(k["false_identifications"], 0),
            }
        )
    if total is not None:
        st = _status_max(fids, 0)
        if total < 1000 or not {"speech", "music"} <= set(kinds):
            st += " (corpus short of 1,000+ speech and music clips)"
        rows.append(
            {
                "goal": "1,000+ unmarked clips, speech and music",
                "condition": f"false IDs, all {total} unmarked clips",
                "target": "0",
                "value": fids,
                "shown": _num(fids, "d"),
                "status": st,
            }
        )
    q = [
        ("PESQ-WB mean, all marked clips", s.get("pesq_wb_mean"), 4.3, "≥ 4.3", ".2f", "min"),
        ("PESQ-WB min, all marked clips", s.get("pesq_wb_min"), 4.3, "≥ 4.3", ".2f", "min"),
        ("SNR min, all marked clips (dB)", s.get("snr_min"), 30.0, "≥ 30 dB", ".1f", "min"),
        (
            "embed speed, 3 s, one core (x real time)",
            s.get("embed_x_realtime_1core"),
            100.0,
            "≥ 100×",
            ".0f",
            "min",
        ),
        (
            "detect time, 3 s, one core (s)",
            s.get("detect_s_3s_1core"),
            0.5,
            "≤ 0.5 s",
            ".3f",
            "max",
        ),
    ]
    for cond, v, target, tgt, fmt, kind in q:
        rows.append(
            {
                "goal": "quality" if "PESQ" in cond or "SNR" in cond else "cost",
                "condition": cond,
                "target": tgt,
                "value": v,
                "shown": _num(v, fmt),
                "status": _status_min(v, target) if kind == "min" else _status_max(v, target),
            }
        )
    return rows


# ----------------------------------------------------------------------------- report


def _lengths_of(res: dict) -> list[str]:
    cols = {c for row in res.get("recovery", {}).values() for c in row}
    return sorted(cols, key=lambda c: float(c.rstrip("s")))


def markdown(res: dict, before: dict | None = None, before_name: str = "") -> str:
    s = res["summary"]
    out = [
        "# Watermark attack suite",
        "",
        f"Mode `{s['mode']}` (strength {s['strength']}), code `{s.get('git', '?')}`, "
        f"wall {s['wall_s']:.0f} s with {s.get('jobs', '?')} processes "
        f"on {s.get('cpus', '?')} CPUs.",
        "",
        "Command:",
        "",
        "```",
        s.get("command", ""),
        "```",
        "",
    ]
    if before is not None:
        bs = before.get("summary", {})
        out += [
            f"Before: `{before_name}` (code `{bs.get('git', '?')}`); cells read *now (before)*.",
            "",
        ]
    ns = s.get("clips_by_length", {})
    out += [
        "## Exact payload recovery per attack and clip length",
        "",
        "Clips per length: "
        + ", ".join(f"{k} {v}" for k, v in ns.items())
        + " (22.05 kHz speech: Piper stock voice + 6 espeak-ng voices). "
        + "A recovery is the exact payload decoded with a `watermarked` verdict. "
        + f"`n/a`: crop leaves < {attacks.MIN_LEFT_S:g} s of the clip."
        + (
            f" Lengths with the `none` attack only: {', '.join(s['no_attack_only'])}."
            if s.get("no_attack_only")
            else ""
        ),
        "",
    ]
    cols = _lengths_of(res)
    if before is not None:
        cols = sorted(set(cols) | set(_lengths_of(before)), key=lambda c: float(c.rstrip("s")))
    out.append("| attack | " + " | ".join(c.replace("s", " s") for c in cols) + " |")
    out.append("|---|" + "---|" * len(cols))
    names = list(res["recovery"]) + [
        n for n in (before or {}).get("recovery", {}) if n not in res["recovery"]
    ]
    for name in names:
        row = res["recovery"].get(name, {})
        brow = (before or {}).get("recovery", {}).get(name, {})
        cells = []
        for c in cols:
            if c in row:
                cell = _pct(row[c])
            elif name in attacks.ATTACKS and not attacks.applies(name, float(c.rstrip("s"))):
                cell = "n/a"
            else:
                cell = ""
            if before is not None and c in brow:
                cell += f" ({_pct(brow[c])})"
            cells.append(cell)
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    out += ["", "## Issue 11 goals", ""]
    rows = goal_rows(res)
    brows = {(r["goal"], r["condition"]): r for r in goal_rows(before)} if before else {}
    hdr = "| goal | condition | target | measured |"
    sep = "|---|---|---|---|"
    if before is not None:
        hdr += " before |"
        sep += "---|"
    out += [hdr + " status |", sep + "---|"]
    last = None
    met = 0
    for r in rows:
        g = r["goal"] if r["goal"] != last else ""
        last = r["goal"]
        line = f"| {g} | {r['condition']} | {r['target']} | {r['shown']} |"
        if before is not None:
            b = brows.get((r["goal"], r["condition"]))
            line += f" {b['shown'] if b else '–'} |"
        out.append(line + f" {r['status']} |")
        met += r["status"] == "**met**"
    out += ["", f"{met} of {len(rows)} goal rows met.", ""]

    out += ["## Unmarked clips (false identifications)", ""]
    out += [
        f"{UNMARKED_SECONDS:g} s clips; a false identification is any `watermarked` verdict "
        "(whatever the payload, stricter than the platform, which also needs a stored "
        "request). Detector score: the sync z the detector reports (`scored`: clips it "
        "reported one for; an `inconclusive` clip that never reached the sync search has none).",
        "",
        "| kind | clips | false IDs | verdicts | max conf. | scored | z mean | z p99 | z max |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for kind, k in sorted((s.get("unmarked_by_kind") or {}).items()):
        verdicts = ", ".join(f"{v} {n}" for v, n in sorted(k["verdicts"].items()))
        out.append(
            f"| {kind} | {k['clips']} | {k['false_identifications']} | {verdicts} | "
            f"{_num(k.get('confidence_max'), '.3f')} | {k.get('z_scored', '–')} | "
            f"{_num(k.get('z_mean'))} | "
            f"{_num(k.get('z_p99'))} | {_num(k.get('z_max'))} |"
        )
    out += ["", "## Quality per clip length", ""]
    out += [
        "| length | embedded | refused | PESQ-WB mean / min | SNR mean / min (dB) |",
        "|---|---|---|---|---|",
    ]
    for c, q in (s.get("quality_by_length") or {}).items():
        out.append(
            f"| {c.replace('s', ' s')} | {q['embedded']} | {q['refused']} | "
            f"{_num(q['pesq_mean'])} / {_num(q['pesq_min'])} | "
            f"{_num(q['snr_mean'], '.1f')} / {_num(q['snr_min'], '.1f')} |"
        )
    out += [
        "",
        "## Cost",
        "",
        f"One core, serial, after the parallel part (median of {s.get('cost_clips', 0)} "
        "3 s clips, BLAS pinned to one thread): "
        f"embed {_num(s.get('embed_x_realtime_1core'), '.0f')}× real time, "
        f"detect {_num(s.get('detect_s_3s_1core'), '.3f')} s "
        f"(max {_num(s.get('detect_s_3s_1core_max'), '.3f')} s). "
        f"Inside the {s.get('jobs', '?')}-process bench (attacked 3 s clips, "
        "machine busy with the attacks' encoders): embed "
        f"{_num(s.get('embed_x_realtime_median'), '.0f')}× real time, detect median "
        f"{_num(s.get('detect_s_3s_median'), '.3f')} s, p95 "
        f"{_num(s.get('detect_s_3s_p95'), '.3f')} s.",
        "",
    ]
    return "\n".join(out)


def print_table(table: dict, lengths: list[float]) -> None:
    cols = [f"{s:g}s" for s in lengths]
    print("| attack | " + " | ".join(cols) + " |")
    print("|---|" + "---|" * len(cols))
    for name, row in table.items():
        cells = [f"{100 * row[c]:.0f}%" if c in row else "" for c in cols]
        print(f"| {name} | " + " | ".join(cells) + " |")


def _git() -> str:
    try:
        root = Path(__file__).resolve().parents[2]
        rev = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "platform/speech/watermark"],
            capture_output=True,
            text=True,
        ).stdout.strip()
        return rev + ("+dirty(platform/speech/watermark)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


# ----------------------------------------------------------------------------- main


def _unmarked_stats(rows: list[dict]) -> dict:
    zs = [r["z"] for r in rows if r.get("z") is not None]
    conf = [r["confidence"] for r in rows if isinstance(r.get("confidence"), int | float)]
    return {
        "clips": len(rows),
        "false_identifications": sum(1 for r in rows if r["verdict"] == "watermarked"),
        "verdicts": {
            v: sum(1 for r in rows if r["verdict"] == v) for v in {r["verdict"] for r in rows}
        },
        "confidence_max": float(max(conf)) if conf else None,
        "z_scored": len(zs),
        "z_mean": float(np.mean(zs)) if zs else None,
        "z_sd": float(np.std(zs)) if zs else None,
        "z_p99": float(np.percentile(zs, 99)) if zs else None,
        "z_max": float(max(zs)) if zs else None,
    }


def main(argv: list[str] | None = None) -> dict:
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
    ap.add_argument(
        "--matrix",
        action="store_true",
        help="lengths 1,1.5,2,3,5,10 s, every attack at every length (issue 11's table)",
    )
    ap.add_argument("--lengths", default=None, help="comma list of seconds (default 1,2,3,5,10)")
    ap.add_argument("--n", type=int, default=40, help="marked clips per length")
    ap.add_argument(
        "--long-n",
        type=int,
        default=None,
        help="marked clips per length for lengths >= 5 s (default: --n)",
    )
    ap.add_argument(
        "--unmarked",
        type=int,
        default=1000,
        help="unmarked 3 s clips per kind (speech, and as many synthetic music clips)",
    )
    ap.add_argument("--unmarked-kinds", default="speech,music")
    ap.add_argument("--attacks", default="all", help="comma list; 'all' = whole suite")
    ap.add_argument(
        "--attack-lengths",
        default=None,
        help="lengths that get every attack (others: no attack only); 'all' (default 3, "
        "or all with --matrix)",
    )
    ap.add_argument("--cost-clips", type=int, default=10, help="3 s clips for the 1-core timing")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--json", default="wm-bench.json")
    ap.add_argument("--md", help="write a markdown report here")
    ap.add_argument("--before", help="previous --json output, shown beside the new figures")
    ap.add_argument(
        "--from-json",
        help="run nothing: write --md from this earlier --json output (with --before if given)",
    )
    args = ap.parse_args(argv)
    before = json.loads(Path(args.before).read_text()) if args.before else None
    if args.from_json:
        if not args.md:
            sys.exit("--from-json needs --md")
        res = json.loads(Path(args.from_json).read_text())
        res = {"summary": res["summary"], "recovery": res["recovery"]}
        res["goals"] = goal_rows(res)
        Path(args.md).write_text(markdown(res, before, args.before or ""))
        print(f"Markdown: {args.md}")
        return res
    argv_used = sys.argv[1:] if argv is None else list(argv)

    drv_args = {
        k: getattr(args, k)
        for k in ("builtin", "audiowmark", "embed_cmd", "detect_cmd", "payload_bytes", "strength")
    }
    if args.lengths:
        lengths = [float(v) for v in args.lengths.split(",") if v]
    else:
        lengths = MATRIX_LENGTHS if args.matrix else [1.0, 2.0, 3.0, 5.0, 10.0]
    all_attacks = list(attacks.ATTACKS)
    chosen = all_attacks if args.attacks == "all" else args.attacks.split(",")
    unknown = [a for a in chosen if a not in attacks.ATTACKS]
    if unknown:
        sys.exit(f"unknown attacks: {', '.join(unknown)}")
    attack_lengths = args.attack_lengths or ("all" if args.matrix else "3")
    att_lengths = (
        lengths if attack_lengths == "all" else [float(v) for v in attack_lengths.split(",")]
    )
    kinds = [k for k in args.unmarked_kinds.split(",") if k]
    corpus.pools()  # generate the cache once, before forking workers

    jobs = []
    clips_by_length = {}
    for sec in sorted(lengths, reverse=True):  # long clips first: better load balance
        n = args.long_n if (args.long_n is not None and sec >= 5.0) else args.n
        names = [a for a in chosen if attacks.applies(a, sec)] if sec in att_lengths else ["none"]
        cl = corpus.clips(sec, n, seed=0)
        clips_by_length[f"{sec:g}s"] = len(cl)
        for label, x in cl:
            jobs.append((label, x, sec, names))
    unmarked_jobs = []
    if "speech" in kinds:
        for label, x in corpus.clips(
            UNMARKED_SECONDS, args.unmarked, seed=12345, min_active=0.5, mix_voices=True
        ):
            unmarked_jobs.append(("speech", label, x))
    if "music" in kinds:
        unmarked_jobs += [("music", f"777:{i}", None) for i in range(args.unmarked)]

    t_start = time.time()
    # Spawned, not forked: a fork of a process with threads (pytest's, tqdm's monitor) can
    # inherit a held lock and never exit, which hung the pool's shutdown in CI.
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        args.jobs, mp_context=spawn, initializer=_init, initargs=(drv_args,)
    ) as ex:
        marked = list(ex.map(marked_job, jobs, chunksize=1))
        clean = list(ex.map(unmarked_job, unmarked_jobs, chunksize=8))
    wall = time.time() - t_start
    marked.sort(key=lambda r: r["seconds"])

    drv = make_driver(argparse.Namespace(**drv_args))
    cost = cost_phase(drv, corpus.clips(3.0, args.cost_clips, seed=999)) if args.cost_clips else {}

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
            if name not in chosen or not attacks.applies(name, sec):
                continue
            if not rs and not (fails and (name == "none" or sec in att_lengths)):
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
    quality = {}
    for sec in lengths:
        e = [r for r in emb if r["seconds"] == sec]
        p = [r["pesq"] for r in e if r.get("pesq") is not None]
        sn = [r["snr"] for r in e]
        quality[f"{sec:g}s"] = {
            "embedded": len(e),
            "refused": sum(1 for r in marked if r["seconds"] == sec and "embed_error" in r),
            "pesq_mean": float(np.mean(p)) if p else None,
            "pesq_min": float(np.min(p)) if p else None,
            "snr_mean": float(np.mean(sn)) if sn else None,
            "snr_min": float(np.min(sn)) if sn else None,
        }
    summary = {
        "mode": "builtin" if args.builtin else "audiowmark" if args.audiowmark else "command",
        "strength": args.strength,
        "command": "python -m bench.watermark.run " + shlex.join(argv_used),
        "git": _git(),
        "jobs": args.jobs,
        "cpus": os.cpu_count(),
        "clips_per_length": args.n,
        "clips_by_length": clips_by_length,
        "no_attack_only": [f"{s:g} s" for s in lengths if s not in att_lengths],
        "embed_failures": {
            f"{s:g}s": sum(1 for r in marked if r["seconds"] == s and "embed_error" in r)
            for s in lengths
        },
        "unmarked_clips": len(clean),
        "false_identifications": len(fp),
        "unmarked_verdicts": {
            v: sum(1 for c in clean if c["verdict"] == v) for v in {c["verdict"] for c in clean}
        },
        "unmarked_by_kind": {
            k: _unmarked_stats([c for c in clean if c["kind"] == k])
            for k in kinds
            if any(c["kind"] == k for c in clean)
        },
        "pesq_wb_mean": float(np.mean(pesqs)) if pesqs else None,
        "pesq_wb_min": float(np.min(pesqs)) if pesqs else None,
        "snr_mean": float(np.mean(snrs)) if snrs else None,
        "snr_min": float(np.min(snrs)) if snrs else None,
        "quality_by_length": quality,
        "embed_x_realtime_median": float(np.median(rt)) if rt else None,
        "detect_s_3s_median": float(np.median(det3)) if det3 else None,
        "detect_s_3s_p95": float(np.percentile(det3, 95)) if det3 else None,
        **cost,
        "wall_s": wall,
    }
    res = {"summary": summary, "recovery": table}
    res["goals"] = goal_rows(res)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(
        json.dumps({**res, "marked": marked, "unmarked": clean}, indent=1, default=str)
    )
    if args.md:
        Path(args.md).parent.mkdir(parents=True, exist_ok=True)
        Path(args.md).write_text(markdown(res, before, args.before or ""))

    print_table(table, lengths)
    print()
    for k, v in summary.items():
        if isinstance(v, dict) and k in ("unmarked_by_kind", "quality_by_length"):
            for kk, vv in v.items():
                print(f"- {k}[{kk}]: " + json.dumps(vv, default=str))
            continue
        print(f"- {k}: {round(v, 3) if isinstance(v, float) else v}")
    print(f"\nJSON: {args.json}" + (f"\nMarkdown: {args.md}" if args.md else ""))
    return res


if __name__ == "__main__":
    main()
