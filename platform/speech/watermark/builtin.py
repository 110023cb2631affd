"""Built-in speech watermark ("timbre-ss").

Spread-transform dither modulation (STDM, a quantisation-index scheme) of STFT
log-energies in time-frequency *cells* (48 ms x ~4 % log-frequency bands between
300 and 3500 Hz, the part of the spectrum that survives telephone band, 4 kHz
low-pass and speech codecs).

* Cells are grouped (keyed) into groups of ~10 cells that lie inside one 96 ms
  slot pair but are spread over the whole band.  Each group's keyed zero-mean
  projection of its cells' dB energies is quantised onto one of two dithered
  lattices (step ``DELTA_DB``), which encodes one bit *whatever the host signal is*
  (host interference is cancelled, unlike plain spread spectrum).
* 36 groups per period are pilots with keyed bits (synchronisation); 124 groups
  carry the rate-1/2 K=7 convolutional code of (40-bit payload + CRC-16).  The
  layout repeats every ``PERIOD_SLOTS`` slots (1.92 s); repeats are soft-combined.
* Embedding (``embedder.py``, format v3) works pair by pair, so a stream is marked as
  it is produced and gives the same samples as marking the whole clip.

Detection resamples to 8 kHz, searches sub-hop shift x slot offset x cyclic phase for
the best pilot score, Viterbi-decodes the code bits at the best hypotheses (each
group's soft value and pilot term weighted by its level re the loud cells: quiet
groups are the first casualties of codecs and noise), and says ``watermarked`` only
if the CRC passes *and* the pilot z-score exceeds a threshold calibrated on unmarked
speech.  It tries every format version (``_format.FORMATS``), newest first, so clips
marked by an older release stay traceable.  See docs/watermark.md for the
false-positive argument and measurements.
"""

from __future__ import annotations

import numpy as np

from . import _format as f
from ._format import (
    ACTIVE_DB,
    N_CODED,
    N_GROUPS,
    PAYLOAD_BITS,
    PERIOD_SLOTS,
    SLOT_S,
    WIN_S,
    MarkFormat,
)
from .base import Detection, WatermarkBackend, WatermarkError
from .embedder import MIN_RMS, StreamingEmbedder

MIN_ACTIVE_S = 0.75  # seconds of active speech below which detection says inconclusive
CLIP_LEVEL = 0.999  # |sample| at or above this counts as clipped
REL_LO_DB, REL_HI_DB, REL_MIN = -45.0, -20.0, 0.2  # group reliability ramp (see _reliability)
SYNC_Z_THRESHOLD = 5.2  # unmarked best z, both formats (2000 clips): mean 3.24, sd 0.40, max 4.70
TOP_HYPOTHESES = 4
SAMPLE_SHIFTS = (0, 16, 32, 48)  # sub-hop shifts (samples at 8 kHz = 0, 2, 4, 6 ms)
SUB_OFFSETS = f.SLOT_FRAMES  # t0 grid inside a slot (one STFT hop)

__all__ = ["PAYLOAD_BITS", "BuiltinWatermark", "StreamingEmbedder"]


def _cell_map(lay: f.Layout, n_slots: int, phase: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Global group id (group + N_GROUPS * period instance) and coefficient per cell."""
    s = np.arange(n_slots) + phase
    rows = s % PERIOD_SLOTS
    inst = (s // PERIOD_SLOTS)[:, None]
    return lay.group[rows] + N_GROUPS * inst, lay.coef[rows]


class _Hypothesis:
    """The cells of the clip at one alignment, with their reference level per format and
    (for the running reference) per parity of the pair grid."""

    def __init__(self, db: np.ndarray, ok: np.ndarray, clip_ref: float):
        self.raw, self.ok, self.clip_ref = db, ok, clip_ref
        self._levels: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}

    def levels(self, fmt: MarkFormat, parity: int) -> tuple[np.ndarray, np.ndarray]:
        """(floored cell dB, per-slot reference) as format ``fmt`` defines them."""
        key = (fmt.version, parity if fmt.reference == "running" else 0)
        if key not in self._levels:
            if fmt.reference == "running":
                ref = f.running_reference(self.raw, parity)
            else:
                ref = np.full(self.raw.shape[0], self.clip_ref)
            self._levels[key] = (f.floor_cells(self.raw, ref, fmt), ref)
        return self._levels[key]


class BuiltinWatermark(WatermarkBackend):
    name = "timbre-ss"
    payload_bits = PAYLOAD_BITS
    PAYLOAD_BITS = PAYLOAD_BITS
    streaming = True

    def __init__(self, strength: float = 1.0):
        self.strength = float(strength)

    # -- embedding ---------------------------------------------------------------------
    def stream(self, sr: int, payload: bytes, key: bytes) -> StreamingEmbedder:
        """A streaming embedder for one clip: ``write`` pieces, then ``close``."""
        return StreamingEmbedder(sr, payload, key, self.strength)

    def embed(self, samples: np.ndarray, sr: int, payload: bytes, key: bytes) -> np.ndarray:
        x = np.asarray(samples, dtype=np.float32)
        if x.ndim != 1:
            raise WatermarkError("expected mono samples")
        stream = self.stream(sr, payload, key)
        head = stream.write(x)
        return np.concatenate([head, stream.close()])

    # -- detection ---------------------------------------------------------------------
    def detect(self, samples: np.ndarray, sr: int, keys: dict[str, bytes]) -> Detection:
        if not keys:
            raise ValueError("no keys given")
        x = np.asarray(samples, dtype=np.float64)
        if x.ndim != 1:
            x = x.mean(axis=1)
        if len(x) < MIN_ACTIVE_S * sr:
            return Detection("inconclusive", reason=f"clip shorter than {MIN_ACTIVE_S} s")
        if not np.all(np.isfinite(x)) or np.sqrt(np.mean(x**2)) < MIN_RMS:
            return Detection("inconclusive", reason="silent or too quiet")
        clip_t = _clipped_times(x, sr)
        x = f.to_detector_rate(x, sr)
        duration = len(x) / f.FS_D
        hyps: list[_Hypothesis] = []
        ref = None
        for shift in SAMPLE_SHIFTS:
            freqs, t, z = f.power_stft(x[shift:])
            e = np.abs(z.T) ** 2 @ f.BANDS
            dur = duration - shift / f.FS_D
            for k in range(SUB_OFFSETS):
                t0 = k * SLOT_S / SUB_OFFSETS
                n_slots = int((dur - t0) / SLOT_S)
                if n_slots < 4:
                    continue
                db = f.slot_db(e, t, t0, SLOT_S, n_slots)
                if ref is None:
                    ref = f.clip_reference(db)
                    active_s = float((db > ref - ACTIVE_DB).mean(axis=1).sum()) * SLOT_S
                    if active_s < MIN_ACTIVE_S:
                        return Detection(
                            "inconclusive", reason=f"only {active_s:.2f}s of active speech"
                        )
                ok = _unclipped_slots(clip_t - shift / f.FS_D, t0, SLOT_S, n_slots)
                hyps.append(_Hypothesis(db, ok, ref))
        if not hyps:
            return Detection("inconclusive", reason="clip too short")

        best_z = -np.inf
        crc_failed = False
        for fmt in f.FORMATS:
            cands = []
            delta = fmt.delta_db * self.strength
            for kid, key in keys.items():
                lay = f.layout(bytes(key), fmt)
                for hi, hyp in enumerate(hyps):
                    zs, _ = _scores(lay, fmt, hyp, delta, pilots_only=True)
                    ph = int(np.argmax(zs))
                    cands.append((float(zs[ph]), kid, hi, ph))
            cands.sort(key=lambda c: -c[0])
            best_z = max(best_z, cands[0][0])
            for zsc, kid, hi, ph in cands[:TOP_HYPOTHESES]:
                if zsc < SYNC_Z_THRESHOLD:
                    break
                lay = f.layout(bytes(keys[kid]), fmt)
                _, soft = _scores(lay, fmt, hyps[hi], delta, phase=ph)
                payload = f.decode(soft)
                if payload is None:
                    crc_failed = True
                    continue
                conf = 1.0 - 0.5 * np.exp(-(zsc - SYNC_Z_THRESHOLD))
                return Detection(
                    "watermarked",
                    payload=payload,
                    key_id=kid,
                    confidence=float(conf),
                    reason=f"format v{fmt.version}, sync z={zsc:.1f}, CRC ok",
                )
        reason = f"best sync z={best_z:.1f} (threshold {SYNC_Z_THRESHOLD})"
        if crc_failed:
            reason += ", CRC failed"
        if duration < PERIOD_SLOTS * SLOT_S:
            # less than one full period: a best-effort short mark may be undecodable
            return Detection("inconclusive", reason=f"clip shorter than one period; {reason}")
        return Detection("not_detected", confidence=0.0, reason=reason)


def _clipped_times(x: np.ndarray, sr: int) -> np.ndarray:
    """Times (s) of samples pinned at full scale (clipping): codecs and gains that clip
    wreck the cell energies of those frames, so detection gives them no weight."""
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    if peak < CLIP_LEVEL:
        return np.empty(0)
    idx = np.nonzero(np.abs(x) >= CLIP_LEVEL)[0]
    return idx / float(sr) if len(idx) >= 4 else np.empty(0)


def _unclipped_slots(times: np.ndarray, t0: float, slot_s: float, n_slots: int) -> np.ndarray:
    """Per slot: 1.0 if no clipped sample falls within it (plus half an STFT window)."""
    ok = np.ones(n_slots)
    if len(times):
        pad = WIN_S / 2.0
        lo = np.floor((times - pad - t0) / slot_s).astype(np.int64)
        hi = np.floor((times + pad - t0) / slot_s).astype(np.int64)
        for a in (lo, hi):
            a = a[(a >= 0) & (a < n_slots)]
            ok[a] = 0.0
    return ok


def _reliability(lev: np.ndarray) -> np.ndarray:
    """Weight of a group from its energy-weighted level (dB re the clip reference):
    quiet groups are the first to be corrupted by codecs and noise."""
    return np.clip((lev - REL_LO_DB) / (REL_HI_DB - REL_LO_DB), REL_MIN, 1.0)


def _scores(
    lay: f.Layout,
    fmt: MarkFormat,
    hyp: _Hypothesis,
    delta: float,
    pilots_only: bool = False,
    phase: int | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Pilot z-score per cyclic phase (or for one phase) and, for one phase, the soft
    values of the code bits (positive = 1)."""
    ok = hyp.ok
    n_slots = ok.shape[0]
    phases = range(PERIOD_SLOTS) if phase is None else [phase]
    zs = np.full(len(phases), -np.inf)
    soft = None
    for i, ph in enumerate(phases):
        # pairs start on even period slots: an odd phase leaves the clip's first slot alone
        db, ref = hyp.levels(fmt, ph % 2)
        gid, coef = _cell_map(lay, n_slots, ph)
        ng = int(gid.max()) + 1
        gflat = gid.ravel()
        proj = np.bincount(gflat, (coef * db).ravel(), ng)
        cnt = np.bincount(gflat, minlength=ng)
        local = np.arange(ng) % N_GROUPS
        complete = cnt == lay.size[local]
        # group weight: level ramp x share of the group's cells in unclipped slots
        w = _reliability(np.bincount(gflat, (coef**2 * (db - ref[:, None])).ravel(), ng))
        unclipped = np.bincount(gflat, np.repeat(ok, coef.shape[1]), ng)
        w = w * unclipped / np.maximum(cnt, 1)
        # c: +1 on the bit-0 lattice, -1 on the bit-1 lattice (times the weight)
        c = w * np.cos(2.0 * np.pi * (proj / delta - lay.dither[local]))
        pil = complete & lay.is_pilot[local]
        w2 = float(np.sum(w[pil] ** 2))
        if w2 > 1e-12:
            sgn = 1.0 - 2.0 * lay.pilot_bit[local[pil]]
            # weighted sum of cosines; each has variance 1/2 under H0, so z ~ N(0, 1)
            zs[i] = float(np.sum(c[pil] * sgn)) / np.sqrt(w2 / 2.0)
        if not pilots_only:
            dat = complete & ~lay.is_pilot[local]
            soft = np.bincount(lay.bit_of[local[dat]], -c[dat], N_CODED)
    return zs, soft
