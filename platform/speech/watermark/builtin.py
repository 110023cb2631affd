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
* The shift each group needs is spread over its cells inversely to their loudness
  (quiet-but-active cells move more), so the mark costs little SNR; no cell in
  silence is touched.  Embedding iterates analysis/synthesis so the realised
  projections land on the lattice.  If the clip would go below ``MIN_SNR_DB``, the
  groups whose shift costs the most energy are left out (up to ``MAX_DROP``) before
  any remaining excess is attenuated; this is what pays for the large lattice step.
* Clips from 0.3 s up are marked best effort (the slot pairs that fit); detection
  says ``inconclusive`` when a clip shorter than one period does not decode.

Detection resamples to 8 kHz, searches time offset x cyclic phase x time scale
(0.97-1.03, tempo) x joint time/frequency scale (speed +/-2 %) for the best pilot
score, Viterbi-decodes the code bits at the best hypotheses (each group's soft value
and pilot term weighted by its level re the clip's loud cells: quiet groups are the
first casualties of codecs and noise), and says
``watermarked`` only if the CRC passes *and* the pilot z-score exceeds a threshold
calibrated on unmarked speech.  See docs/watermark.md for the false-positive
argument and measurements.
"""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache
from math import gcd

import numpy as np
from scipy.fft import next_fast_len
from scipy.signal import istft, resample_poly, stft

from .base import Detection, WatermarkBackend, WatermarkError

FS_D = 8000  # detector sample rate
WIN_S = 0.032
HOP_S = 0.008
SLOT_FRAMES = 6  # 48 ms slots
SLOT_S = SLOT_FRAMES * HOP_S
F_LO, F_HI = 300.0, 3500.0
PERIOD_SLOTS = 40
GROUPS_PER_PAIR = 8  # groups per 2-slot block
PAYLOAD_BITS = 40
CRC_BITS = 16
K = 7
G0, G1 = 0o133, 0o171
N_INFO = PAYLOAD_BITS + CRC_BITS
N_CODED = 2 * (N_INFO + K - 1)  # 124
N_GROUPS = (PERIOD_SLOTS // 2) * GROUPS_PER_PAIR  # 160
N_PILOTS = N_GROUPS - N_CODED  # 36
DELTA_DB = 6.75  # lattice step of the projection (dB) at strength 1.0
FLOOR_DB = 40.0  # cells are floored at (loud reference - FLOOR_DB)
MOVABLE_DB = 32.0  # only cells within this of the reference are modified
COST_ALPHA = 0.5  # shift share ~ (E_ref / E_cell) ** COST_ALPHA
MAX_CELL_DB = 6.0
N_ITER = 3
MIN_ACTIVE_S = 0.75  # seconds of active speech below which detection says inconclusive
MIN_EMBED_S = 0.3  # shortest clip embed accepts (marks whatever fits, best effort)
MIN_RMS = 1e-4  # -80 dBFS: below this a clip counts as silent
MIN_SNR_DB = 30.0  # hard quality floor: the mark is attenuated to respect it
DROP_GROUPS = True  # over the SNR budget: skip the costliest groups before attenuating
DROP_MARGIN = 0.95
MAX_DROP = 0.3  # never leave out more than this share of the groups
CLIP_LEVEL = 0.999  # |sample| at or above this counts as clipped
REL_LO_DB, REL_HI_DB, REL_MIN = -45.0, -20.0, 0.2  # group reliability ramp (see _reliability)
SYNC_Z_THRESHOLD = 5.2  # unmarked best z (1000 clips): mean 3.13, sd 0.36, max 4.70
TOP_HYPOTHESES = 4
# Scale search.  The lattice decoder only tolerates ~1 ms of misalignment, so the
# +/-2 % grids below cost detection time without rescuing tempo/speed (measured 0 %);
# they are kept short.  See docs/watermark.md.
T_SCALES: tuple[float, ...] = (1.0,)
SPEED_SCALES: tuple[float, ...] = ()  # frequency scale; time scale = 1 / it
SAMPLE_SHIFTS = (0, 16, 32, 48)  # sub-hop shifts (samples at 8 kHz = 0, 2, 4, 6 ms)
SUB_OFFSETS = SLOT_FRAMES  # t0 grid inside a slot (one STFT hop)


def _band_edges() -> np.ndarray:
    edges = [F_LO]
    while edges[-1] < F_HI:
        f = edges[-1]
        edges.append(f + max(62.5, 0.04 * f))
    return np.array(edges)


EDGES = _band_edges()
NB = len(EDGES) - 1


# ----------------------------------------------------------------------------- keyed layout


class _Layout:
    """Keyed, per-period layout: cell -> group, projection coefficients, dithers."""

    def __init__(self, key: bytes):
        seed = hmac.new(key, b"timbre-ss/v2/layout", hashlib.sha256).digest()
        rng = np.random.default_rng(int.from_bytes(seed[:16], "big"))
        group = np.empty((PERIOD_SLOTS, NB), dtype=np.int64)
        cells = 2 * NB
        for m in range(PERIOD_SLOTS // 2):
            lab = rng.permutation(np.arange(cells) % GROUPS_PER_PAIR) + m * GROUPS_PER_PAIR
            group[2 * m : 2 * m + 2] = lab.reshape(2, NB)
        self.group = group
        c = rng.choice(np.array([-1.0, 1.0]), size=(PERIOD_SLOTS, NB))
        g = group.ravel()
        mean = np.bincount(g, c.ravel(), N_GROUPS) / np.bincount(g, minlength=N_GROUPS)
        c = c - mean[group]
        norm = np.sqrt(np.bincount(g, (c**2).ravel(), N_GROUPS))
        self.coef = c / norm[group]
        self.size = np.bincount(g, minlength=N_GROUPS)
        self.dither = rng.random(N_GROUPS)
        role = rng.permutation(N_GROUPS)  # role < N_CODED: code bit index; else pilot
        self.bit_of = np.where(role < N_CODED, role, -1)
        self.is_pilot = role >= N_CODED
        self.pilot_bit = rng.integers(0, 2, N_GROUPS) * self.is_pilot


@lru_cache(maxsize=16)
def _layout(key: bytes) -> _Layout:
    return _Layout(key)


# ----------------------------------------------------------------------------- coding


def _crc16(data: bytes) -> int:
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def _bits(data: bytes, n: int) -> np.ndarray:
    return np.unpackbits(np.frombuffer(data, dtype=np.uint8))[:n].astype(np.int64)


def _parity(x: np.ndarray) -> np.ndarray:
    x = x.copy()
    p = np.zeros_like(x)
    while np.any(x):
        p ^= x & 1
        x >>= 1
    return p


_REGS = np.arange(128)
_OUT0 = _parity(_REGS & G0)
_OUT1 = _parity(_REGS & G1)


def _conv_encode(info: np.ndarray) -> np.ndarray:
    bits = np.concatenate([info, np.zeros(K - 1, dtype=np.int64)])
    state = 0
    out = np.empty(2 * len(bits), dtype=np.int64)
    for i, u in enumerate(bits):
        reg = (int(u) << 6) | state
        out[2 * i], out[2 * i + 1] = _OUT0[reg], _OUT1[reg]
        state = reg >> 1
    return out


def _viterbi(soft: np.ndarray) -> np.ndarray:
    """Soft-decision Viterbi for the terminated K=7 code; soft > 0 means bit 1."""
    n_steps = len(soft) // 2
    ns = np.arange(64)
    regs = np.stack([(ns << 1), (ns << 1) | 1])  # (2, 64) registers leading to ns
    prev = regs & 63
    sgn0 = 2.0 * _OUT0[regs] - 1.0
    sgn1 = 2.0 * _OUT1[regs] - 1.0
    pm = np.full(64, -1e18)
    pm[0] = 0.0
    dec = np.empty((n_steps, 64), dtype=np.int8)
    for t in range(n_steps):
        cand = pm[prev] + sgn0 * soft[2 * t] + sgn1 * soft[2 * t + 1]
        d = np.argmax(cand, axis=0)
        dec[t] = d
        pm = cand[d, ns]
    state = 0
    out = np.empty(n_steps, dtype=np.int64)
    for t in range(n_steps - 1, -1, -1):
        out[t] = state >> 5
        state = ((state << 1) | int(dec[t, state])) & 63
    return out[: n_steps - (K - 1)]


def _codeword(payload: bytes) -> np.ndarray:
    crc = _crc16(payload)
    info = np.concatenate([_bits(payload, PAYLOAD_BITS), _bits(crc.to_bytes(2, "big"), 16)])
    return _conv_encode(info)


def _decode(soft: np.ndarray) -> bytes | None:
    info = _viterbi(soft)
    payload = np.packbits(info[:PAYLOAD_BITS].astype(np.uint8)).tobytes()
    crc = int(np.packbits(info[PAYLOAD_BITS:].astype(np.uint8)).view(">u2")[0])
    return payload if _crc16(payload) == crc else None


# ----------------------------------------------------------------------------- features


def _power_stft(x: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple]:
    win = int(round(WIN_S * sr))
    hop = int(round(HOP_S * sr))
    nfft = next_fast_len(win)
    f, t, z = stft(
        x,
        fs=sr,
        window="hann",
        nperseg=win,
        noverlap=win - hop,
        nfft=nfft,
        boundary="zeros",
        padded=True,
    )
    return f, t, z, (win, hop, nfft)


def _istft(z: np.ndarray, sr: int, win: int, hop: int, nfft: int) -> np.ndarray:
    _, y = istft(z, fs=sr, window="hann", nperseg=win, noverlap=win - hop, nfft=nfft, boundary=True)
    return y


def _band_matrix(freqs: np.ndarray, fscale: float = 1.0) -> np.ndarray:
    """(bins, NB) averaging matrix of the bands, edges scaled by ``fscale``."""
    idx = np.searchsorted(EDGES * fscale, freqs, side="right") - 1
    m = np.zeros((len(freqs), NB))
    ok = (idx >= 0) & (idx < NB)
    m[np.nonzero(ok)[0], idx[ok]] = 1.0
    return m / np.maximum(m.sum(axis=0), 1.0)


def _slot_db(
    e_frames: np.ndarray, frame_t: np.ndarray, t0: float, slot_s: float, n_slots: int
) -> np.ndarray:
    """dB of the mean band energy of each slot [t0 + k*slot_s, t0 + (k+1)*slot_s)."""
    # slot boundaries sit half a hop away from frame centres (no rounding ambiguity)
    idx = np.floor((frame_t - t0) / slot_s + 0.5 / SLOT_FRAMES).astype(np.int64)
    ok = (idx >= 0) & (idx < n_slots)
    sums = np.zeros((n_slots, e_frames.shape[1]))
    np.add.at(sums, idx[ok], e_frames[ok])
    cnt = np.bincount(idx[ok], minlength=n_slots)[:, None]
    return 10.0 * np.log10(sums / np.maximum(cnt, 1) + 1e-20)


def _to_detector_rate(x: np.ndarray, sr: int) -> np.ndarray:
    if sr == FS_D:
        return x
    g = gcd(int(sr), FS_D)
    return resample_poly(x, FS_D // g, int(sr) // g)


def _analysis_db(x: np.ndarray, sr: int, n_slots: int) -> np.ndarray:
    """Cell dB exactly as the detector sees them at the nominal alignment."""
    xd = _to_detector_rate(x, sr)
    f, t, z, _ = _power_stft(xd, FS_D)
    return _slot_db(np.abs(z.T) ** 2 @ _band_matrix(f), t, 0.0, SLOT_S, n_slots)


def _reference(db: np.ndarray) -> float:
    return float(np.percentile(db, 95))


def _floor(db: np.ndarray, ref: float) -> np.ndarray:
    return np.maximum(db, ref - FLOOR_DB)


def _cell_map(lay: _Layout, n_slots: int, phase: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Global group id (group + N_GROUPS * period instance) and coefficient per cell."""
    s = np.arange(n_slots) + phase
    rows = s % PERIOD_SLOTS
    inst = (s // PERIOD_SLOTS)[:, None]
    return lay.group[rows] + N_GROUPS * inst, lay.coef[rows]


# ----------------------------------------------------------------------------- backend


class BuiltinWatermark(WatermarkBackend):
    name = "timbre-ss"
    payload_bits = PAYLOAD_BITS
    PAYLOAD_BITS = PAYLOAD_BITS

    def __init__(self, strength: float = 1.0):
        self.strength = float(strength)

    # -- embedding ---------------------------------------------------------------------
    def embed(self, samples: np.ndarray, sr: int, payload: bytes, key: bytes) -> np.ndarray:
        x = np.asarray(samples, dtype=np.float32)
        if x.ndim != 1:
            raise WatermarkError("expected mono samples")
        if len(payload) * 8 != PAYLOAD_BITS:
            raise WatermarkError(f"payload must be {PAYLOAD_BITS // 8} bytes")
        if sr < 8000:
            raise WatermarkError("sample rate below 8 kHz")
        if not np.all(np.isfinite(x)):
            raise WatermarkError("clip contains non-finite samples")
        if len(x) < int(round(MIN_EMBED_S * sr)):
            raise WatermarkError(f"clip shorter than {MIN_EMBED_S} s cannot carry the watermark")
        if float(np.sqrt(np.mean(x.astype(np.float64) ** 2))) < MIN_RMS:
            raise WatermarkError("clip is silent or too quiet to carry the watermark")
        lay = _layout(bytes(key))
        delta = DELTA_DB * self.strength
        code = _codeword(payload)
        bits = np.where(lay.is_pilot, lay.pilot_bit, code[np.maximum(lay.bit_of, 0)])

        xd = x.astype(np.float64)
        f, t, z, (win, hop, nfft) = _power_stft(xd, sr)
        n_slots = int(len(x) / sr / SLOT_S)
        n_slots -= n_slots % 2
        db0 = _analysis_db(xd, sr, n_slots)
        ref = _reference(db0)
        movable = db0 > ref - MOVABLE_DB
        if not movable.any():
            raise WatermarkError("clip has no active speech to carry the watermark")
        # Short clips (< one 1.92 s period) are marked best effort: every complete slot
        # pair that fits carries its groups; detection may then say "inconclusive".
        gid, coef = _cell_map(lay, n_slots)
        ng = int(gid.max()) + 1
        gflat = gid.ravel()
        local = np.arange(ng) % N_GROUPS
        share = coef * movable * 10.0 ** (COST_ALPHA * (ref - db0) / 10.0)
        denom = np.bincount(gflat, (coef * share).ravel(), ng)
        usable = denom > 1e-9
        proj0 = np.bincount(gflat, (coef * _floor(db0, ref)).ravel(), ng)
        # nearest point of the lattice delta * (k + dither + bit / 2)
        off = delta * (lay.dither[local] + bits[local] / 2.0)
        target = off + delta * np.round((proj0 - off) / delta)

        slot_f = np.floor(t / SLOT_S + 0.5 / SLOT_FRAMES).astype(np.int64)
        in_slots = (slot_f >= 0) & (slot_f < n_slots)
        slot_of_frame = np.clip(slot_f, 0, n_slots - 1)
        band_of_bin = np.searchsorted(EDGES, f, side="right") - 1
        inband = (band_of_bin >= 0) & (band_of_bin < NB)
        gains = np.zeros((n_slots, NB))
        proj = proj0
        y = xd
        for _ in range(N_ITER):
            need = np.where(usable, target - proj, 0.0)
            gains = np.clip(
                gains + share * (need / np.where(usable, denom, 1.0))[gid],
                -MAX_CELL_DB,
                MAX_CELL_DB,
            )
            g = np.zeros((len(f), len(t)))
            g[np.ix_(inband, in_slots)] = gains[slot_of_frame[in_slots]][:, band_of_bin[inband]].T
            y = xd + _istft(z * (10.0 ** (g / 20.0) - 1.0), sr, win, hop, nfft)[: len(x)]
            dby = _analysis_db(y, sr, n_slots)
            proj = np.bincount(gflat, (coef * _floor(dby, ref)).ravel(), ng)
        # quality floor.  Over budget, first leave out the groups whose shift costs the
        # most energy (each is one lost repetition of one bit, which the code and the
        # repetitions absorb), then attenuate whatever excess remains.
        d = y - xd
        energy = max(float(np.sum(xd**2)), 1e-30)
        ratio = float(np.sum(d**2)) / energy
        limit = 10.0 ** (-MIN_SNR_DB / 10.0)
        if ratio > limit and DROP_GROUPS:
            pz = np.abs(z[inband][:, in_slots]) ** 2  # (in-band bins, frames in slots)
            cell_p = np.zeros((n_slots, NB))
            np.add.at(
                cell_p,
                (slot_of_frame[in_slots][None, :], band_of_bin[inband][:, None]),
                pz,
            )
            cost = np.bincount(gflat, (cell_p * (10.0 ** (gains / 20.0) - 1.0) ** 2).ravel(), ng)
            order = np.argsort(-cost)
            kept = np.sum(cost) - np.cumsum(cost[order])
            n_drop = int(np.searchsorted(-kept, -np.sum(cost) * limit / ratio * DROP_MARGIN)) + 1
            drop = np.zeros(ng, dtype=bool)
            drop[order[: min(n_drop, int(MAX_DROP * ng))]] = True
            gains = np.where(drop[gid], 0.0, gains)
            g = np.zeros((len(f), len(t)))
            g[np.ix_(inband, in_slots)] = gains[slot_of_frame[in_slots]][:, band_of_bin[inband]].T
            y = xd + _istft(z * (10.0 ** (g / 20.0) - 1.0), sr, win, hop, nfft)[: len(x)]
            d = y - xd
            ratio = float(np.sum(d**2)) / energy
        if ratio > limit:
            y = xd + d * np.sqrt(limit / ratio) * 0.999
        return np.clip(y, -1.0, 1.0).astype(np.float32)

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
        x = _to_detector_rate(x, sr)
        duration = len(x) / FS_D
        combos = [(1.0, ts) for ts in T_SCALES] + [(fs, 1.0 / fs) for fs in SPEED_SCALES]
        hyps = []
        ref = None
        for shift in SAMPLE_SHIFTS:
            f, t, z, _ = _power_stft(x[shift:], FS_D)
            p = np.abs(z.T) ** 2
            dur = duration - shift / FS_D
            for fs, ts in combos:
                e = p @ _band_matrix(f, fs)
                slot_s = SLOT_S * ts
                for k in range(SUB_OFFSETS):
                    t0 = k * slot_s / SUB_OFFSETS
                    n_slots = int((dur - t0) / slot_s)
                    if n_slots < 4:
                        continue
                    db = _slot_db(e, t, t0, slot_s, n_slots)
                    if ref is None:
                        ref = _reference(db)
                        active_s = float((db > ref - MOVABLE_DB).mean(axis=1).sum()) * SLOT_S
                        if active_s < MIN_ACTIVE_S:
                            return Detection(
                                "inconclusive", reason=f"only {active_s:.2f}s of active speech"
                            )
                    ok = _unclipped_slots(clip_t - shift / FS_D, t0, slot_s, n_slots)
                    hyps.append((_floor(db, ref), ok))
        if not hyps:
            return Detection("inconclusive", reason="clip too short")

        delta = DELTA_DB * self.strength
        cands = []
        for kid, key in keys.items():
            lay = _layout(bytes(key))
            for hi, (db, ok) in enumerate(hyps):
                zs, _ = _scores(lay, db, delta, ref, ok, pilots_only=True)
                ph = int(np.argmax(zs))
                cands.append((float(zs[ph]), kid, hi, ph))
        cands.sort(key=lambda c: -c[0])
        best_z = cands[0][0]
        for zsc, kid, hi, ph in cands[:TOP_HYPOTHESES]:
            if zsc < SYNC_Z_THRESHOLD:
                break
            lay = _layout(bytes(keys[kid]))
            db, ok = hyps[hi]
            _, soft = _scores(lay, db, delta, ref, ok, phase=ph)
            payload = _decode(soft)
            if payload is not None:
                conf = 1.0 - 0.5 * np.exp(-(zsc - SYNC_Z_THRESHOLD))
                return Detection(
                    "watermarked",
                    payload=payload,
                    key_id=kid,
                    confidence=float(conf),
                    reason=f"sync z={zsc:.1f}, CRC ok",
                )
        reason = f"best sync z={best_z:.1f} (threshold {SYNC_Z_THRESHOLD})"
        if best_z >= SYNC_Z_THRESHOLD:
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
    lay: _Layout,
    db: np.ndarray,
    delta: float,
    ref: float,
    ok: np.ndarray,
    pilots_only: bool = False,
    phase: int | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Pilot z-score per cyclic phase (or for one phase) and, for one phase, the soft
    values of the code bits (positive = 1)."""
    n_slots = db.shape[0]
    phases = range(PERIOD_SLOTS) if phase is None else [phase]
    zs = np.full(len(phases), -np.inf)
    soft = None
    for i, ph in enumerate(phases):
        gid, coef = _cell_map(lay, n_slots, ph)
        ng = int(gid.max()) + 1
        gflat = gid.ravel()
        proj = np.bincount(gflat, (coef * db).ravel(), ng)
        cnt = np.bincount(gflat, minlength=ng)
        local = np.arange(ng) % N_GROUPS
        complete = cnt == lay.size[local]
        # group weight: level ramp x share of the group's cells in unclipped slots
        w = _reliability(np.bincount(gflat, (coef**2 * (db - ref)).ravel(), ng))
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
