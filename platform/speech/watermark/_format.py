"""What every version of the built-in mark ("timbre-ss") shares: the time-frequency cells,
the keyed layout, the channel code and the analysis the detector sees.

The analysis runs at 8 kHz (``FS_D``): STFT with a 32 ms periodic Hann window and an 8 ms
hop, frames centred on multiples of the hop (scipy's ``boundary="zeros"``). Six frames make
a 48 ms slot; two slots make a *pair*, the unit inside which the cells of a group lie. A
cell is one slot x one band (41 bands, 300-3500 Hz) and its feature is the dB of its mean
energy. See docs/watermark.md.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from functools import lru_cache
from math import gcd

import numpy as np
from scipy.signal import resample_poly, stft

FS_D = 8000  # analysis sample rate
HOP = 64  # 8 ms at FS_D
WIN = 256  # 32 ms at FS_D
SLOT_FRAMES = 6  # 48 ms slots
PAIR_FRAMES = 2 * SLOT_FRAMES
PAIR_SAMPLES = PAIR_FRAMES * HOP  # 96 ms
SLOT_S = SLOT_FRAMES * HOP / FS_D
WIN_S = WIN / FS_D
F_LO, F_HI = 300.0, 3500.0
PERIOD_SLOTS = 40
GROUPS_PER_PAIR = 8
PAYLOAD_BITS = 40
CRC_BITS = 16
K = 7
G0, G1 = 0o133, 0o171
N_INFO = PAYLOAD_BITS + CRC_BITS
N_CODED = 2 * (N_INFO + K - 1)  # 124
N_GROUPS = (PERIOD_SLOTS // 2) * GROUPS_PER_PAIR  # 160
N_PILOTS = N_GROUPS - N_CODED  # 36
ACTIVE_DB = 32.0  # a cell within this of the clip's reference counts as active speech


@dataclass(frozen=True)
class MarkFormat:
    """One version of the mark. Detection tries every version, newest first, so clips
    marked by an older release stay traceable.

    ``reference`` is how the loud-cell reference level (which floors cells and weights
    groups) is found: ``"clip"`` is the 95th-percentile cell of the whole clip (v2, needs
    the whole clip before marking); ``"running"`` follows the pairs one by one, so the
    embedder can mark a stream piece by piece (v3).
    """

    version: int
    layout_seed: bytes
    reference: str
    delta_db: float  # lattice step of a group's projection (dB) at strength 1.0
    floor_db: float  # cells are floored at (reference - floor_db)
    movable_db: float  # the embedder modifies only cells within this of the reference
    carrier_hz: tuple[float, float] | None = None  # bands wholly inside carry it; None: all


V2 = MarkFormat(2, b"timbre-ss/v2/layout", "clip", 6.75, 40.0, 32.0)
# v3's per-pair reference sits higher than a clip percentile, so its floor is nearer and
# every cell above the floor is movable (cells left between them only add noise).
# Its bands stop inside the telephone passband (G.712, 300-3400 Hz): a phone line's filter
# edges wreck the outermost bands (300-362 Hz and 3397-3533 Hz).
V3 = MarkFormat(3, b"timbre-ss/v3/layout", "running", 5.0, 35.0, 34.0, (360.0, 3400.0))
FORMATS = (V3, V2)
CURRENT = V3
# Running reference (v3): a pair's reference is the loudest 95th-percentile cell of it and
# the pairs just before it, so a clip cut anywhere agrees with the embedder again after
# this many pairs (0.58 s).
REF_WINDOW_PAIRS = 6


def _band_edges() -> np.ndarray:
    edges = [F_LO]
    while edges[-1] < F_HI:
        f = edges[-1]
        edges.append(f + max(62.5, 0.04 * f))
    return np.array(edges)


EDGES = _band_edges()
NB = len(EDGES) - 1
WINDOW = np.hanning(WIN + 1)[:-1]  # periodic Hann, as scipy's stft uses
WINDOW_SUM = float(WINDOW.sum())
FREQS = np.fft.rfftfreq(WIN, 1.0 / FS_D)


def carrier_bands(fmt: MarkFormat) -> np.ndarray:
    if fmt.carrier_hz is None:
        return np.ones(NB, dtype=bool)
    lo, hi = fmt.carrier_hz
    return (EDGES[:-1] >= lo) & (EDGES[1:] <= hi)


class Layout:
    """Keyed, per-period layout: cell -> group, projection coefficients, dithers, roles."""

    def __init__(self, key: bytes, fmt: MarkFormat):
        digest = hmac.new(key, fmt.layout_seed, hashlib.sha256).digest()
        rng = np.random.default_rng(int.from_bytes(digest[:16], "big"))
        group = np.empty((PERIOD_SLOTS, NB), dtype=np.int64)
        cells = 2 * NB
        for m in range(PERIOD_SLOTS // 2):
            lab = rng.permutation(np.arange(cells) % GROUPS_PER_PAIR) + m * GROUPS_PER_PAIR
            group[2 * m : 2 * m + 2] = lab.reshape(2, NB)
        self.group = group
        g = group.ravel()
        if fmt.version >= 3:
            # balanced signs in every group (independent draws can give a group one sign only)
            c = np.empty(g.shape)
            for gid in range(N_GROUPS):
                cells_of = np.nonzero(g == gid)[0]
                c[cells_of] = rng.permutation(np.arange(len(cells_of)) % 2 * 2.0 - 1.0)
            c = c.reshape(PERIOD_SLOTS, NB)
        else:
            c = rng.choice(np.array([-1.0, 1.0]), size=(PERIOD_SLOTS, NB))
        c[:, ~carrier_bands(fmt)] = 0.0  # other bands are analysed, never moved or read
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

    def bits(self, payload: bytes) -> np.ndarray:
        """The bit every group of a period carries: pilots' keyed bits, else code bits."""
        code = codeword(payload)
        return np.where(self.is_pilot, self.pilot_bit, code[np.maximum(self.bit_of, 0)])


@lru_cache(maxsize=32)
def layout(key: bytes, fmt: MarkFormat) -> Layout:
    return Layout(key, fmt)


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


def codeword(payload: bytes) -> np.ndarray:
    crc = _crc16(payload)
    info = np.concatenate([_bits(payload, PAYLOAD_BITS), _bits(crc.to_bytes(2, "big"), 16)])
    return _conv_encode(info)


def decode(soft: np.ndarray) -> bytes | None:
    info = _viterbi(soft)
    payload = np.packbits(info[:PAYLOAD_BITS].astype(np.uint8)).tobytes()
    crc = int(np.packbits(info[PAYLOAD_BITS:].astype(np.uint8)).view(">u2")[0])
    return payload if _crc16(payload) == crc else None


# ----------------------------------------------------------------------------- analysis


def band_matrix(freqs: np.ndarray = FREQS, fscale: float = 1.0) -> np.ndarray:
    """(bins, NB) averaging matrix of the bands, edges scaled by ``fscale``."""
    idx = np.searchsorted(EDGES * fscale, freqs, side="right") - 1
    m = np.zeros((len(freqs), NB))
    ok = (idx >= 0) & (idx < NB)
    m[np.nonzero(ok)[0], idx[ok]] = 1.0
    return m / np.maximum(m.sum(axis=0), 1.0)


BANDS = band_matrix()
BAND_OF_BIN = np.searchsorted(EDGES, FREQS, side="right") - 1
IN_BAND = (BAND_OF_BIN >= 0) & (BAND_OF_BIN < NB)


def power_stft(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frequencies, frame times and STFT (bins x frames) of an 8 kHz signal."""
    return stft(
        x,
        fs=FS_D,
        window="hann",
        nperseg=WIN,
        noverlap=WIN - HOP,
        nfft=WIN,
        boundary="zeros",
        padded=True,
    )


def slot_db(
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


def to_detector_rate(x: np.ndarray, sr: int) -> np.ndarray:
    if sr == FS_D:
        return x
    g = gcd(int(sr), FS_D)
    return resample_poly(x, FS_D // g, int(sr) // g)


def clip_reference(db: np.ndarray) -> float:
    return float(np.percentile(db, 95))


def running_reference(db: np.ndarray, first_pair_slot: int) -> np.ndarray:
    """Per-slot reference level of the v3 format: pairs start at ``first_pair_slot``
    (0 or 1; a lone leading slot is a pair of its own)."""
    n_slots = db.shape[0]
    starts = list(range(first_pair_slot, n_slots, 2))
    if first_pair_slot:
        starts = [0] + starts
    bounds = starts + [n_slots]
    spans = list(zip(bounds[:-1], bounds[1:], strict=True))
    levels = [float(np.percentile(db[a:b], 95)) for a, b in spans]
    ref = np.empty(n_slots)
    for i, (a, b) in enumerate(spans):
        ref[a:b] = max(levels[max(0, i - REF_WINDOW_PAIRS + 1) : i + 1])
    return ref


def floor_cells(db: np.ndarray, ref, fmt: MarkFormat) -> np.ndarray:
    ref = np.asarray(ref, dtype=np.float64)
    return np.maximum(db, (ref[:, None] if ref.ndim else ref) - fmt.floor_db)
