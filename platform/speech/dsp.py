"""numpy/scipy DSP helpers for speech post-processing and measurement.

All functions take and return float32 mono arrays in [-1, 1] unless noted.
"""

from __future__ import annotations

import math
from math import gcd

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import signal
from scipy.linalg import solve_toeplitz
from scipy.ndimage import median_filter, minimum_filter1d, uniform_filter1d

_EPS = 1e-10


def _f32(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float32)


# --------------------------------------------------------------------------- basics


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Polyphase resampling (exact rational ratio, no FFT edge wrap)."""
    if sr_in == sr_out or len(x) == 0:
        return _f32(x)
    g = gcd(int(sr_in), int(sr_out))
    return _f32(signal.resample_poly(np.asarray(x, dtype=np.float64), sr_out // g, sr_in // g))


def db_to_gain(db: float) -> float:
    return float(10.0 ** (db / 20.0))


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0


def limit(x: np.ndarray, sr: int, ceiling: float = 0.97, lookahead_ms: float = 5.0) -> np.ndarray:
    """Look-ahead peak limiter: smooth gain reduction instead of hard clipping.

    A min-filter of width 2w+1 followed by a box smoother of width w+1 guarantees
    the smoothed gain at each peak is <= the gain that peak needs.
    """
    x = np.asarray(x, dtype=np.float32)
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    if peak <= ceiling:
        return _f32(x)
    w = max(1, int(sr * lookahead_ms / 1000))
    need = np.minimum(1.0, ceiling / np.maximum(np.abs(x), _EPS))
    g = minimum_filter1d(need, size=2 * w + 1, mode="nearest")
    g = uniform_filter1d(g, size=w + 1, mode="nearest")
    return _f32(np.clip(x * g, -ceiling, ceiling))


def apply_gain(x: np.ndarray, sr: int, gain: float, ceiling: float = 0.97) -> np.ndarray:
    """Linear gain followed by the limiter so loud settings never wrap/clip."""
    return limit(np.asarray(x, dtype=np.float32) * np.float32(gain), sr, ceiling)


def trim_silence(x: np.ndarray, sr: int, threshold_db: float = -45.0, pad_ms: float = 30.0):
    """Drop leading/trailing audio quieter than threshold_db relative to the peak."""
    if len(x) == 0:
        return _f32(x)
    hop = max(1, sr // 100)
    env = np.sqrt(uniform_filter1d(np.square(x, dtype=np.float64), size=hop * 2))
    thr = env.max() * db_to_gain(threshold_db)
    idx = np.flatnonzero(env > thr)
    if len(idx) == 0:
        return _f32(x[:0])
    pad = int(sr * pad_ms / 1000)
    return _f32(x[max(0, idx[0] - pad) : idx[-1] + pad + 1])


# ----------------------------------------------------------------------- joining


def crossfade_join(
    chunks: list[np.ndarray],
    sr: int,
    crossfade_ms: float = 30.0,
    pauses_ms: list[int] | None = None,
) -> np.ndarray:
    """Join chunks with a short equal-power (sin/cos) crossfade.

    ``pauses_ms[i]`` inserts silence after chunk i (SSML <break>); the edges next to
    the silence get the same fade so the cut never clicks. Empty chunks contribute
    only their pause.
    """
    pauses = list(pauses_ms or [])
    pauses += [0] * (len(chunks) - len(pauses))
    joiner = CrossfadeJoiner(sr, crossfade_ms)
    parts = [joiner.push(chunk, pause) for chunk, pause in zip(chunks, pauses, strict=True)]
    parts.append(joiner.close())
    return _f32(np.concatenate(parts))


class CrossfadeJoiner:
    """``crossfade_join`` as the chunks arrive: ``push`` returns the samples no later chunk
    can change (all but the last crossfade length), ``close`` the rest. The concatenation
    of what they return is ``crossfade_join`` of all the chunks."""

    def __init__(self, sr: int, crossfade_ms: float = 30.0):
        self.sr = sr
        self.n = n = max(1, int(sr * crossfade_ms / 1000))
        t = (np.arange(n, dtype=np.float64) + 0.5) / n
        self.fade_out = np.cos(t * np.pi / 2).astype(np.float32)
        self.fade_in = np.sin(t * np.pi / 2).astype(np.float32)
        self.tail: np.ndarray | None = None  # held back: the next overlap may change it
        self.pending_pause = 0

    def _silence(self, ms: int) -> np.ndarray:
        return np.zeros(int(self.sr * ms / 1000), np.float32)

    def push(self, chunk: np.ndarray, pause_ms: int = 0) -> np.ndarray:
        n, tail, out = self.n, self.tail, []
        c = _f32(chunk).copy()
        if len(c):
            if tail is None:
                if self.pending_pause:
                    out.append(self._silence(self.pending_pause))
                tail = c
            elif self.pending_pause:
                k = min(n, len(tail), len(c))
                tail[-k:] *= self.fade_out[n - k :] if k < n else self.fade_out
                c[:k] *= self.fade_in[:k]
                out += [tail, self._silence(self.pending_pause)]
                tail = c
            else:
                k = min(n, len(tail), len(c))
                fo, fi = (self.fade_out, self.fade_in) if k == n else _fades(k)
                tail[-k:] = tail[-k:] * fo + c[:k] * fi
                tail = np.concatenate([tail, c[k:]])
            self.pending_pause = 0
        self.pending_pause += int(pause_ms)
        if tail is not None and len(tail) > n:
            out.append(tail[:-n])
            tail = tail[-n:]
        self.tail = tail
        return np.concatenate(out) if out else np.zeros(0, np.float32)

    def close(self) -> np.ndarray:
        out = [] if self.tail is None else [self.tail]
        if self.pending_pause:
            out.append(self._silence(self.pending_pause))
        self.tail, self.pending_pause = None, 0
        return np.concatenate(out) if out else np.zeros(0, np.float32)


def _fades(k: int) -> tuple[np.ndarray, np.ndarray]:
    t = (np.arange(k, dtype=np.float64) + 0.5) / k
    return np.cos(t * np.pi / 2).astype(np.float32), np.sin(t * np.pi / 2).astype(np.float32)


# ------------------------------------------------------------------------ pitch


def estimate_f0(
    x: np.ndarray,
    sr: int,
    fmin: float = 60.0,
    fmax: float = 450.0,
    hop_ms: float = 10.0,
    win_ms: float = 30.0,
    threshold: float = 0.15,
    silence_db: float = -40.0,
) -> tuple[np.ndarray, np.ndarray]:
    """YIN F0 track. Returns (f0_hz, frame_centre_times_s); unvoiced frames are 0.

    Vectorised over frames with an FFT cross term, so ~10 s of audio costs a few ms.
    """
    x = np.asarray(x, dtype=np.float64)
    hop = max(1, int(sr * hop_ms / 1000))
    w = int(sr * win_ms / 1000)
    tau_min = max(2, int(sr / fmax))
    tau_max = int(math.ceil(sr / fmin))
    span = w + tau_max + 1
    if len(x) < span:
        x = np.pad(x, (0, span - len(x)))
    frames = sliding_window_view(x, span)[::hop]
    nfft = 1 << int(math.ceil(math.log2(span + w)))
    a = np.fft.rfft(frames[:, :w], nfft)
    b = np.fft.rfft(frames, nfft)
    cross = np.fft.irfft(np.conj(a) * b, nfft)[:, : tau_max + 1]
    cs = np.concatenate([np.zeros((len(frames), 1)), np.cumsum(frames**2, axis=1)], axis=1)
    taus = np.arange(tau_max + 1)
    e0 = cs[:, w][:, None]
    etau = cs[:, taus + w] - cs[:, taus]
    d = np.maximum(e0 + etau - 2 * cross, 0.0)
    cmnd = np.ones_like(d)
    cum = np.cumsum(d[:, 1:], axis=1)
    cmnd[:, 1:] = d[:, 1:] * taus[1:] / np.maximum(cum, _EPS)

    energy = np.sqrt(cs[:, w] / w)
    gate = energy.max() * db_to_gain(silence_db) if len(energy) else 0.0
    f0 = np.zeros(len(frames))
    below = cmnd[:, tau_min:] < threshold
    has = below.any(axis=1) & (energy > gate)
    first = np.argmax(below, axis=1) + tau_min
    for i in np.flatnonzero(has):
        t = first[i]
        while t + 1 <= tau_max and cmnd[i, t + 1] < cmnd[i, t]:
            t += 1
        if 1 <= t < tau_max:  # parabolic refinement of the dip
            y0, y1, y2 = cmnd[i, t - 1], cmnd[i, t], cmnd[i, t + 1]
            den = y0 - 2 * y1 + y2
            shift = 0.5 * (y0 - y2) / den if abs(den) > _EPS else 0.0
            tt = t + float(np.clip(shift, -1, 1))
        else:
            tt = float(t)
        f0[i] = sr / tt
    times = (np.arange(len(frames)) * hop + w / 2) / sr
    return f0, times


def _pitch_marks(x: np.ndarray, sr: int, f0_at: np.ndarray, uv_period: int):
    """Analysis marks on waveform peaks, one per period in voiced regions.

    Returns (marks, local_periods, voiced_flags). Local periods are the actual mark
    spacing, so resynthesis with ratio 1 lands every segment where it came from.
    """
    marks, voiced = [], []
    t = 0
    n = len(x)
    while t < n:
        f = f0_at[t]
        if f > 0:
            p = int(sr / f)
            if not voiced or not voiced[-1]:  # new voiced run: anchor on first peak
                seg = x[t : t + p]
                t = t + int(np.argmax(seg)) if len(seg) else t
            marks.append(t)
            voiced.append(True)
            lo, hi = t + int(0.8 * p), min(n, t + int(1.2 * p) + 1)
            t = lo + int(np.argmax(x[lo:hi])) if hi > lo else t + p
        else:
            marks.append(t)
            voiced.append(False)
            t += uv_period
    m = np.array(marks)
    v = np.array(voiced, dtype=bool)
    periods = np.diff(m, append=m[-1] + uv_period) if len(m) else m
    expected = np.where(v, sr / np.maximum(f0_at[np.minimum(m, n - 1)], 1.0), uv_period)
    # spacing across a voiced->unvoiced edge is not a period; fall back to the estimate
    bad = v & ((periods < 0.5 * expected) | (periods > 1.5 * expected))
    periods = np.where(bad, expected, periods).astype(int)
    return m, np.maximum(periods, 2), v


def psola(
    x: np.ndarray,
    sr: int,
    semitones: float = 0.0,
    range_factor: float = 1.0,
    f0_track: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """TD-PSOLA pitch modification with duration preserved.

    ``semitones`` shifts the whole contour; ``range_factor`` expands (>1) or
    compresses (<1) F0 excursions around the utterance median, which is what
    makes emotions sound lively/flat. Formants are kept (no chipmunk effect).
    Unvoiced frames are copied through unchanged.
    """
    x = np.asarray(x, dtype=np.float32)
    if len(x) == 0 or (semitones == 0.0 and range_factor == 1.0):
        return _f32(x)
    f0, times = f0_track if f0_track is not None else estimate_f0(x, sr)
    f0 = clean_f0(f0)
    if not np.any(f0 > 0):
        return _f32(x)
    # per-sample f0 lookup (nearest frame)
    idx = np.clip(np.searchsorted(times, np.arange(len(x)) / sr), 0, len(f0) - 1)
    f0_at = f0[idx]
    ref = float(np.median(f0[f0 > 0]))
    # Mark on peaks of the (near-sinusoidal) fundamental: raw speech often has two
    # similar peaks per period, and alternating between them jitters the output.
    b, a = signal.butter(2, min(1.5 * ref, 0.45 * sr), btype="low", fs=sr)
    guide = signal.filtfilt(b, a, x.astype(np.float64))
    marks, periods, voiced = _pitch_marks(guide, sr, f0_at, uv_period=max(16, sr // 200))
    # ratio from the smoothed track, not mark spacing, so range scaling adds no jitter
    f0_m = np.where(voiced, f0_at[np.minimum(marks, len(x) - 1)], ref)
    f0_m = np.maximum(f0_m, 1.0)
    ratio = 2.0 ** (semitones / 12.0) * (f0_m / ref) ** (range_factor - 1.0)
    ratio = np.where(voiced, np.clip(ratio, 0.5, 2.0), 1.0)

    pad = int(periods.max()) + 2
    xp = np.pad(x.astype(np.float64), (pad, pad))
    out = np.zeros(len(x) + 2 * pad, np.float64)
    wsum = np.zeros_like(out)
    windows: dict[int, np.ndarray] = {}
    t_out = float(marks[0])
    while t_out < len(x):
        k = int(np.searchsorted(marks, t_out))
        if k >= len(marks) or (k > 0 and t_out - marks[k - 1] < marks[k] - t_out):
            k -= 1
        p = int(periods[k])
        win = windows.get(p)
        if win is None:
            win = windows[p] = np.hanning(2 * p + 1)
        a = marks[k] + pad
        if voiced[k]:
            s = int(round(t_out)) + pad
            t_out += max(1.0, p / ratio[k])
        else:
            # unvoiced: copy in place, which also re-syncs after a voiced run. The
            # next mark is past the midpoint we were nearest to, so this always advances.
            s = a
            t_out = float(marks[k] + p)
        out[s - p : s + p + 1] += xp[a - p : a + p + 1] * win
        wsum[s - p : s + p + 1] += win
    # window-sum normalisation keeps loudness when marks are packed/spread
    y = out[pad : pad + len(x)] / np.maximum(wsum[pad : pad + len(x)], 0.25)
    return _f32(y)


def clean_f0(f0: np.ndarray) -> np.ndarray:
    """Fix YIN octave jumps against the utterance median, then median-smooth."""
    f0 = np.asarray(f0, dtype=np.float64).copy()
    v = f0 > 0
    if not v.any():
        return f0
    med = float(np.median(f0[v]))
    f0[v & (f0 > 1.6 * med)] /= 2.0
    f0[v & (f0 < 0.625 * med)] *= 2.0
    sm = median_filter(f0, size=5, mode="nearest")
    f0 = np.where(v & (sm > 0), sm, f0)
    # isolated single voiced frames are usually noise
    iso = v & ~np.roll(v, 1) & ~np.roll(v, -1)
    f0[iso] = 0.0
    return f0


def pitch_shift(x: np.ndarray, sr: int, semitones: float, method: str = "psola") -> np.ndarray:
    """Shift pitch, keeping duration.

    ``psola`` (default) keeps formants and is best for speech. ``wsola`` stretches
    then resamples: works on any signal (e.g. unvoiced-heavy), but shifts formants.
    """
    if semitones == 0.0:
        return _f32(x)
    if method == "psola":
        return psola(x, sr, semitones=semitones)
    if method == "wsola":
        r = 2.0 ** (semitones / 12.0)
        stretched = time_stretch(x, sr, 1.0 / r)
        # reading the stretched signal r times faster restores length, scales f0 by r
        fine = 1000
        y = signal.resample_poly(stretched, fine, int(round(fine * r)))
        return _f32(_fit_length(y, len(x)))
    raise ValueError(f"unknown pitch shift method {method!r}")


def _fit_length(y: np.ndarray, n: int) -> np.ndarray:
    return y[:n] if len(y) >= n else np.pad(y, (0, n - len(y)))


def time_stretch(x: np.ndarray, sr: int, rate: float) -> np.ndarray:
    """WSOLA time-scale modification; rate > 1 is faster (shorter), pitch unchanged."""
    x = np.asarray(x, dtype=np.float64)
    if rate == 1.0 or len(x) == 0:
        return _f32(x)
    n = int(0.03 * sr)
    hs = n // 2
    ha = hs * rate
    tol = int(0.008 * sr)
    win = np.hanning(n + 1)[:n]  # periodic Hann sums to 1 at 50 % overlap
    xp = np.pad(x, (tol + n, tol + 2 * n))
    out_len = int(len(x) / rate) + n
    y = np.zeros(out_len + n)
    wsum = np.zeros_like(y)
    delta = 0
    k = 0
    while True:
        pos_out = k * hs
        ideal = int(round(k * ha))
        if pos_out >= out_len or ideal >= len(x):
            break
        a = ideal + delta + tol + n
        y[pos_out : pos_out + n] += xp[a : a + n] * win
        wsum[pos_out : pos_out + n] += win
        natural = xp[a + hs : a + hs + n]
        nxt = int(round((k + 1) * ha)) + tol + n
        region = xp[nxt - tol : nxt + tol + n]
        if len(region) >= n + 2 * tol and np.any(natural):
            cc = np.correlate(region, natural, mode="valid")
            delta = int(np.argmax(cc)) - tol
        else:
            delta = 0
        k += 1
    y = y[: int(len(x) / rate)] / np.maximum(wsum[: int(len(x) / rate)], 1e-3)
    return _f32(y)


# ------------------------------------------------------------------ colouring


def spectral_tilt(x: np.ndarray, sr: int, db: float, corner_hz: float = 1500.0) -> np.ndarray:
    """First-order high shelf: +db brightens (tense voice), -db darkens (lax voice)."""
    if db == 0.0 or len(x) == 0:
        return _f32(x)
    b, a = signal.butter(1, corner_hz, btype="high", fs=sr)
    hp = signal.lfilter(b, a, np.asarray(x, dtype=np.float64))
    return _f32(x + (db_to_gain(db) - 1.0) * hp)


def whisperize(
    x: np.ndarray, sr: int, amount: float, order: int | None = None, seed: int = 0
) -> np.ndarray:
    """Replace voicing with noise through the same vocal-tract (LPC) filter.

    ``amount`` in [0, 1] mixes the whispered version in. The noise is seeded so
    output stays deterministic. Frame energy is matched to the original.
    """
    x = np.asarray(x, dtype=np.float64)
    if amount <= 0 or len(x) == 0:
        return _f32(x)
    order = order or int(2 + sr / 1000)
    n = 1 << int(round(math.log2(0.025 * sr)))
    hop = n // 2
    win = np.hanning(n + 1)[:n]
    rng = np.random.default_rng(seed)
    xp = np.pad(x, (n, n))
    wh = np.zeros_like(xp)
    for s in range(0, len(xp) - n, hop):
        fr = xp[s : s + n] * win
        e = float(np.dot(fr, fr))
        if e < 1e-9:
            continue
        r = np.correlate(fr, fr, mode="full")[n - 1 : n + order]
        r[0] *= 1.0 + 1e-4  # white-noise correction keeps the filter stable
        try:
            a = solve_toeplitz(r[:order], -r[1 : order + 1])
        except np.linalg.LinAlgError:
            continue
        noise = rng.standard_normal(n + order * 4)
        shaped = signal.lfilter([1.0], np.concatenate([[1.0], a]), noise)[order * 4 :] * win
        es = float(np.dot(shaped, shaped))
        wh[s : s + n] += shaped * math.sqrt(e / max(es, 1e-12))
    wh = wh[n : n + len(x)]
    # whispers lack the glottal low end
    b, a_hp = signal.butter(2, 300, btype="high", fs=sr)
    wh = signal.lfilter(b, a_hp, wh)
    amount = float(min(1.0, amount))
    return _f32((1.0 - amount) * x + amount * wh)


# ------------------------------------------------------------------ measurement


def spectral_centroid(x: np.ndarray, sr: int) -> float:
    """Energy-weighted mean frequency over non-silent frames (Hz)."""
    n = 1024
    if len(x) < n:
        x = np.pad(x, (0, n - len(x)))
    frames = sliding_window_view(np.asarray(x, dtype=np.float64), n)[:: n // 2] * np.hanning(n)
    mag = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    energy = mag.sum(axis=1)
    keep = energy > energy.max() * 1e-3
    freqs = np.fft.rfftfreq(n, 1 / sr)
    return float((mag[keep] @ freqs).sum() / max(mag[keep].sum(), _EPS))


def active_duration(x: np.ndarray, sr: int, threshold_db: float = -40.0) -> float:
    """Seconds between first and last non-silent sample (ignores edge padding)."""
    t = trim_silence(x, sr, threshold_db, pad_ms=0)
    return len(t) / sr


def analyze(x: np.ndarray, sr: int) -> dict[str, float]:
    """Prosodic summary used by tests and benchmarks.

    ``f0_spread_st`` is a robust F0 range (1.4826 * MAD in semitones), insensitive
    to the odd octave error that inflates a plain standard deviation.
    """
    f0, _ = estimate_f0(x, sr)
    raw_voiced = float(np.mean(f0 > 0)) if len(f0) else 0.0
    f0 = clean_f0(f0)
    v = f0[f0 > 0]
    st = 12 * np.log2(v / np.median(v)) if len(v) else np.zeros(0)
    speech = trim_silence(x, sr, -40.0, pad_ms=0)
    return {
        "duration_s": len(x) / sr,
        "active_s": active_duration(x, sr),
        "f0_mean": float(np.mean(v)) if len(v) else 0.0,
        "f0_std": float(np.std(v)) if len(v) else 0.0,
        "f0_spread_st": float(1.4826 * np.median(np.abs(st))) if len(st) else 0.0,
        "voiced_frac": raw_voiced,
        "rms_db": 20 * math.log10(max(rms(speech), _EPS)),
        "centroid_hz": spectral_centroid(x, sr),
    }
