"""The streaming embedder of the built-in mark (format v3).

It marks audio piece by piece as an engine produces it. Every decision is taken per *pair*
(96 ms at the 8 kHz analysis rate) on a fixed grid that starts at the clip's first sample,
from the audio up to the pair's end plus one analysis window, and from state carried over
from earlier pairs: the running reference level, the SNR budget spent so far and the mark
already added. How the audio is cut into pieces therefore changes nothing: streaming a clip
in any pieces gives the samples ``embed`` gives for the whole clip (to float rounding).

Per pair: the host's cells are analysed exactly as the detector sees them (8 kHz STFT);
each group's shift onto its lattice point is spread over its cells inversely to their
loudness, and three analysis/synthesis passes make the realised projections land on the
lattice. The 8 kHz modification is upsampled and added to the source-rate audio, so the
audio outside 300-3500 Hz is untouched. The SNR floor holds for every prefix of the
stream: a pair may spend what the host energy so far allows, less what earlier pairs spent
(over budget, its costliest groups are left out before what remains is attenuated).

Output is released once a pair has carried a mark and the clip is long enough to be marked
at all, so nothing unmarked leaves: leading silence waits for the first marked pair, and a
stream that never becomes markable raises ``WatermarkError`` at ``close``.
"""

from __future__ import annotations

from math import gcd

import numpy as np
from scipy.signal import resample_poly

from . import _format as f
from .base import WatermarkError

COST_ALPHA = 0.75  # shift share ~ (E_ref / E_cell) ** COST_ALPHA
MAX_CELL_DB = 6.0
N_ITER = 3
MIN_EMBED_S = 0.3  # shortest clip that is marked (best effort below one period)
MIN_RMS = 1e-4  # -80 dBFS: a pair (or clip) below this is silent
MIN_SNR_DB = 30.0  # hard quality floor, held for every prefix of the stream
SNR_MARGIN = 0.97  # of the budget: the source-rate SNR differs slightly from the 8 kHz one
DROP_MARGIN = 0.95
_LIMIT = 10.0 ** (-MIN_SNR_DB / 10.0)
# Analysis span of pair j at 8 kHz: its 12 frames, each one window wide.
_SPAN_BEFORE = f.WIN // 2
_SPAN = f.PAIR_SAMPLES - f.HOP + f.WIN  # 960 samples
_FRAME_STARTS = np.arange(f.PAIR_FRAMES) * f.HOP
_FRAME_IDX = _FRAME_STARTS[:, None] + np.arange(f.WIN)[None, :]
_SLOT_OF_FRAME = np.arange(f.PAIR_FRAMES) // f.SLOT_FRAMES


class _Tape:
    """Samples at absolute positions, dropping what is no longer needed."""

    def __init__(self):
        self.data = np.zeros(0)
        self.start = 0  # absolute index of data[0]

    @property
    def end(self) -> int:
        return self.start + len(self.data)

    def append(self, x: np.ndarray) -> None:
        self.data = np.concatenate([self.data, x])

    def read(self, a: int, b: int) -> np.ndarray:
        """Samples [a, b); zeros before 0 and after the end."""
        out = np.zeros(b - a)
        lo, hi = max(a, self.start), min(b, self.end)
        if hi > lo:
            out[lo - a : hi - a] = self.data[lo - self.start : hi - self.start]
        return out

    def add(self, a: int, x: np.ndarray) -> None:
        """Add ``x`` at [a, a + len(x)), growing the tape with zeros as needed."""
        if a + len(x) > self.end:
            self.data = np.concatenate([self.data, np.zeros(a + len(x) - self.end)])
        lo = max(a, self.start)
        self.data[lo - self.start : a + len(x) - self.start] += x[lo - a :]

    def until(self, b: int) -> _Tape:
        """A view of the samples before ``b``."""
        view = _Tape()
        view.start, view.data = self.start, self.data[: max(0, b - self.start)]
        return view

    def drop_before(self, a: int) -> None:
        if a > self.start:
            cut = min(a, self.end) - self.start
            self.data = self.data[cut:]
            self.start += cut


class _Resampler:
    """Streaming ``scipy.signal.resample_poly``: output sample n is computed from the same
    inputs as on the whole signal, so the samples equal the whole-signal ones."""

    def __init__(self, sr_in: int, sr_out: int):
        g = gcd(sr_in, sr_out)
        self.up, self.down = sr_out // g, sr_in // g
        half = 10 * max(self.up, self.down) / self.up + 2  # resample_poly's filter, in inputs
        self.context = self.down * int(np.ceil(half / self.down))
        self.done = 0  # outputs produced

    def first_input(self) -> int:
        """The first input sample the next outputs still need."""
        return max(0, self.done * self.down // self.up - self.context - self.down)

    def ready(self, tape: _Tape, final: bool) -> np.ndarray:
        """Outputs that the input on ``tape`` now fixes (all of them once ``final``)."""
        n_in = tape.end
        if final:
            stop = -(-n_in * self.up // self.down)
        else:
            stop = max(self.done, (n_in - self.context) * self.up // self.down)
        if stop <= self.done:
            return np.zeros(0)
        if self.up == self.down == 1:
            out = tape.read(self.done, stop)
        else:
            a = self.first_input() // self.down * self.down
            b = n_in if final else min(n_in, stop * self.down // self.up + self.context + 1)
            seg = resample_poly(tape.read(a, b), self.up, self.down)
            first = a * self.up // self.down
            out = seg[self.done - first : stop - first]
            if len(out) < stop - self.done:  # resample_poly's last, zero-padded outputs
                out = np.concatenate([out, np.zeros(stop - self.done - len(out))])
        self.done = stop
        return out


class StreamingEmbedder:
    """``write`` pieces of one clip in order, then ``close``; each returns the marked
    samples (float32) that are final so far. Their concatenation is the marked clip."""

    def __init__(self, sr: int, payload: bytes, key: bytes, strength: float = 1.0):
        if sr < 8000:
            raise WatermarkError("sample rate below 8 kHz")
        if len(payload) * 8 != f.PAYLOAD_BITS:
            raise WatermarkError(f"payload must be {f.PAYLOAD_BITS // 8} bytes")
        self.sr = int(sr)
        self.fmt = f.CURRENT
        self.delta = self.fmt.delta_db * strength
        self.lay = f.layout(bytes(key), self.fmt)
        self.bits = self.lay.bits(payload)
        self.src = _Tape()  # host, source rate
        self.host8 = _Tape()  # host, 8 kHz
        self.mark8 = _Tape()  # the mark, 8 kHz
        self.mark_src = _Tape()  # the mark, source rate
        self.down = _Resampler(self.sr, f.FS_D)
        self.up = _Resampler(f.FS_D, self.sr)
        self.pair = 0  # next pair to mark
        self.emitted = 0  # source samples returned so far
        self.levels: list[float] = []  # 95th-percentile cell of the last pairs
        self.host_energy = 0.0  # of pairs [0, self.counted), in 8 kHz sample units
        self.counted = 0
        self.mark_energy = 0.0
        self.marked_pairs = 0
        self.sum_sq = 0.0
        self.closed = False

    # -- public ---------------------------------------------------------------------
    def write(self, samples: np.ndarray) -> np.ndarray:
        if self.closed:
            raise WatermarkError("stream already closed")
        x = np.asarray(samples, dtype=np.float64)
        if x.ndim != 1:
            raise WatermarkError("expected mono samples")
        if not np.all(np.isfinite(x)):
            raise WatermarkError("clip contains non-finite samples")
        self.src.append(x)
        self.sum_sq += float(np.dot(x, x))
        return self._advance(final=False)

    def close(self) -> np.ndarray:
        if self.closed:
            return np.zeros(0, np.float32)
        n = self.src.end
        if n < int(round(MIN_EMBED_S * self.sr)):
            raise WatermarkError(f"clip shorter than {MIN_EMBED_S} s cannot carry the watermark")
        if n == 0 or np.sqrt(self.sum_sq / n) < MIN_RMS:
            raise WatermarkError("clip is silent or too quiet to carry the watermark")
        out = self._advance(final=True)
        self.closed = True
        if not self.marked_pairs:
            raise WatermarkError("clip has no active speech to carry the watermark")
        return out

    # -- internals --------------------------------------------------------------------
    def _advance(self, final: bool) -> np.ndarray:
        self.host8.append(self.down.ready(self.src, final))
        if final:  # every complete pair of the clip
            last = int(self.src.end / self.sr / (2 * f.SLOT_S) + 1e-9)
        else:  # every pair whose analysis span the host now covers
            last = (self.host8.end + _SPAN_BEFORE - _SPAN) // f.PAIR_SAMPLES + 1
        while self.pair < last:
            self._mark_pair(self.pair)
            self.pair += 1
        # The 8 kHz mark is settled up to where the next pair's analysis span starts.
        settled = self.host8.end if final else f.PAIR_SAMPLES * self.pair - _SPAN_BEFORE
        self.mark8.add(settled, np.zeros(0))
        self.mark_src.append(self.up.ready(self.mark8.until(settled), final))
        stop = min(self.src.end, self.mark_src.end)
        released = self.marked_pairs > 0 and self.src.end >= MIN_EMBED_S * self.sr
        if not released or stop <= self.emitted:
            return np.zeros(0, np.float32)
        y = self.src.read(self.emitted, stop) + self.mark_src.read(self.emitted, stop)
        self.emitted = stop
        self._trim()
        return np.clip(y, -1.0, 1.0).astype(np.float32)

    def _trim(self) -> None:
        """Drop what no later step reads (the next pair's span, the resamplers' inputs)."""
        span = f.PAIR_SAMPLES * self.pair - _SPAN_BEFORE
        self.host8.drop_before(span)
        self.mark8.drop_before(min(span, self.up.first_input()))
        self.src.drop_before(min(self.emitted, self.down.first_input()))
        self.mark_src.drop_before(self.emitted)

    def _count_energy(self, upto: int) -> None:
        """Add the host energy of pairs up to ``upto`` (exclusive) to the budget. It counts
        at the source rate, in 8 kHz sample units: the mark is band-limited, so its energy
        per second is the same at both rates."""
        while self.counted < upto:
            k = self.counted
            lo = int(round(f.PAIR_SAMPLES * k * self.sr / f.FS_D))
            hi = int(round(f.PAIR_SAMPLES * (k + 1) * self.sr / f.FS_D))
            x = self.src.read(lo, hi)
            self.host_energy += float(np.dot(x, x)) * f.FS_D / self.sr
            self.counted += 1

    def _frames(self, host: np.ndarray) -> np.ndarray:
        return np.fft.rfft(host[_FRAME_IDX] * f.WINDOW, axis=1) / f.WINDOW_SUM

    def _cells(self, spec: np.ndarray) -> np.ndarray:
        """(2, NB) cell dB of a pair from its (12, bins) spectrum."""
        e = (np.abs(spec) ** 2) @ f.BANDS
        return 10.0 * np.log10(e.reshape(2, f.SLOT_FRAMES, f.NB).mean(axis=1) + 1e-20)

    def _synth(self, spec: np.ndarray, gains: np.ndarray) -> np.ndarray:
        """The time-domain change (span samples) of scaling the cells by ``gains`` dB."""
        g = np.zeros((f.PAIR_FRAMES, len(f.FREQS)))
        g[:, f.IN_BAND] = gains[_SLOT_OF_FRAME][:, f.BAND_OF_BIN[f.IN_BAND]]
        frames = np.fft.irfft(spec * (10.0 ** (g / 20.0) - 1.0), n=f.WIN, axis=1)
        frames *= f.WINDOW * (f.WINDOW_SUM / 1.5)  # weighted overlap-add; sum of w^2 = 1.5
        out = np.zeros(_SPAN)
        np.add.at(out, _FRAME_IDX, frames)
        return out

    def _mark_pair(self, j: int) -> None:
        a = f.PAIR_SAMPLES * j - _SPAN_BEFORE
        host = self.host8.read(a, a + _SPAN) + self.mark8.read(a, a + _SPAN)
        spec = self._frames(host)
        db0 = self._cells(spec)
        self.levels = (self.levels + [float(np.percentile(db0, 95))])[-f.REF_WINDOW_PAIRS :]
        ref = max(self.levels)
        self._count_energy(j + 1)
        lo = int(round(f.PAIR_SAMPLES * j * self.sr / f.FS_D))
        hi = int(round(f.PAIR_SAMPLES * (j + 1) * self.sr / f.FS_D))
        nominal = self.src.read(lo, hi)
        pair_energy = float(np.dot(nominal, nominal)) * f.FS_D / self.sr
        if pair_energy < MIN_RMS**2 * len(nominal) * f.FS_D / self.sr:
            return
        rows = (2 * j + np.arange(2)) % f.PERIOD_SLOTS
        base = (rows[0] // 2) * f.GROUPS_PER_PAIR
        gl = self.lay.group[rows] - base
        coef = self.lay.coef[rows]
        movable = db0 > ref - self.fmt.movable_db
        if not movable.any():
            return
        n_g = f.GROUPS_PER_PAIR
        share = coef * movable * 10.0 ** (COST_ALPHA * (ref - db0) / 10.0)
        denom = np.bincount(gl.ravel(), (coef * share).ravel(), n_g)
        usable = denom > 1e-9
        if not usable.any():
            return
        proj = np.bincount(gl.ravel(), (coef * f.floor_cells(db0, ref, self.fmt)).ravel(), n_g)
        idx = base + np.arange(n_g)
        off = self.delta * (self.lay.dither[idx] + self.bits[idx] / 2.0)
        target = off + self.delta * np.round((proj - off) / self.delta)
        gains = np.zeros((2, f.NB))
        safe = np.where(usable, denom, 1.0)
        for _ in range(N_ITER):
            need = np.where(usable, target - proj, 0.0)
            gains = np.clip(gains + share * (need / safe)[gl], -MAX_CELL_DB, MAX_CELL_DB)
            mark = self._synth(spec, gains)
            dby = self._cells(self._frames(host + mark))
            proj = np.bincount(gl.ravel(), (coef * f.floor_cells(dby, ref, self.fmt)).ravel(), n_g)
        budget = _LIMIT * SNR_MARGIN * self.host_energy - self.mark_energy
        energy = float(np.dot(mark, mark))
        cell_p = (np.abs(spec) ** 2 @ f.BANDS).reshape(2, f.SLOT_FRAMES, f.NB).sum(axis=1)
        cost = np.bincount(gl.ravel(), (cell_p * (10.0 ** (gains / 20.0) - 1.0) ** 2).ravel(), n_g)
        cost *= energy / max(float(cost.sum()), 1e-30)
        drop = np.zeros(n_g, dtype=bool)
        if energy > budget:
            # Over the budget: leave out the groups whose shift costs the most (each is one
            # lost repetition of one bit, which the code absorbs), then attenuate the rest.
            order = np.argsort(-cost)
            kept = cost.sum() - np.cumsum(cost[order])
            n_drop = int(np.searchsorted(-kept, -max(budget, 0.0) * DROP_MARGIN)) + 1
            drop[order[:n_drop]] = True
        if drop.any():
            gains = np.where(drop[gl], 0.0, gains)
            mark = self._synth(spec, gains)
            energy = float(np.dot(mark, mark))
        if energy > budget:
            scale = np.sqrt(max(budget, 0.0) / energy) * 0.999 if energy > 0 else 0.0
            mark *= scale
            energy *= scale * scale
        if energy <= 0.0:
            return
        self.mark_energy += energy
        self.mark8.add(a, mark)
        self.marked_pairs += 1
