"""Audio checks for uploaded recordings (consent statements, training data).

``assess(samples, sr, limits)`` measures an upload and lists the problems a person can act on
(re-record closer to the microphone, lower the input gain, find a quieter room...). Each
problem has a stable ``code``:

- ``empty`` / ``too_short`` / ``too_long``: duration against the limits;
- ``silent``: the peak is below ``limits.silent_peak_dbfs`` (nothing was recorded);
- ``no_speech``: silero-vad finds less than ``limits.min_speech_s`` of speech;
- ``too_quiet`` / ``too_loud``: the speech RMS level against the limits;
- ``clipped``: more than ``limits.max_clip_ratio`` of the samples sit at full scale;
- ``too_noisy``: the SNR estimate is below ``limits.min_snr_db``.

SNR estimate: the power of the VAD's speech frames against the power of its non-speech frames
(both in 20 ms frames), ``10 log10((P_speech - P_noise) / P_noise)``. When the VAD leaves less
than ``MIN_NOISE_S`` of non-speech (a clip trimmed tight), it falls back to an energy-percentile
estimate over 20 ms frames: the 95th percentile frame power as speech, the 10th as noise.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from speech import dsp, vad

FRAME_S = 0.02
MIN_NOISE_S = 0.3
CLIP_LEVEL = 0.99
_FLOOR_DB = -120.0


@dataclass(frozen=True)
class QualityLimits:
    min_duration_s: float = 1.0
    max_duration_s: float = 60.0
    min_speech_s: float = 0.5
    silent_peak_dbfs: float = -60.0
    min_speech_rms_dbfs: float = -40.0
    max_speech_rms_dbfs: float = -6.0
    max_clip_ratio: float = 0.001
    min_snr_db: float = 15.0


@dataclass(frozen=True)
class Problem:
    code: str
    message: str


@dataclass
class Assessment:
    duration_s: float
    peak_dbfs: float
    rms_dbfs: float
    speech_rms_dbfs: float
    clip_ratio: float
    speech_s: float
    speech_ratio: float
    snr_db: float
    snr_method: str  # "vad" or "percentile"
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def codes(self) -> list[str]:
        return [p.code for p in self.problems]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ok"] = self.ok
        return d


def to_dbfs(level: float) -> float:
    return 20.0 * math.log10(level) if level > 0 else _FLOOR_DB


def peak_dbfs(x: np.ndarray) -> float:
    return to_dbfs(float(np.max(np.abs(x)))) if len(x) else _FLOOR_DB


def rms_dbfs(x: np.ndarray) -> float:
    return to_dbfs(dsp.rms(x))


def clip_ratio(x: np.ndarray, level: float = CLIP_LEVEL) -> float:
    """Fraction of samples at or above ``level`` of full scale."""
    return float(np.mean(np.abs(x) >= level)) if len(x) else 0.0


def _frame_powers(x: np.ndarray, sr: int) -> np.ndarray:
    n = max(1, int(sr * FRAME_S))
    k = len(x) // n
    if k == 0:
        return np.zeros(0)
    return np.mean(np.square(x[: k * n].astype(np.float64).reshape(k, n)), axis=1)


def _snr(p_sig: float, p_noise: float) -> float:
    p_noise = max(p_noise, 1e-12)
    return 10.0 * math.log10(max(p_sig - p_noise, 1e-12) / p_noise)


def snr_percentile(x: np.ndarray, sr: int) -> float:
    p = _frame_powers(x, sr)
    if len(p) == 0:
        return 0.0
    return _snr(float(np.percentile(p, 95)), float(np.percentile(p, 10)))


def estimate_snr(
    x: np.ndarray, sr: int, segments: list[vad.Segment] | None = None
) -> tuple[float, str]:
    """(SNR in dB, method): VAD speech vs non-speech frames, else energy percentiles.

    The noise is the *median* power of the non-speech 20 ms frames, not their mean: the frames
    at the edges of VAD segments still carry the onsets and tails of words, and their mean read
    clean takes with half a second of room tone as 11-14 dB (measured on the synthetic talents;
    the median reads them as 50 dB and white noise at 2 dB as 2 dB)."""
    x = np.asarray(x, dtype=np.float32).reshape(-1)
    segments = vad.speech_segments(x, sr) if segments is None else segments
    mask = vad.speech_mask(x, sr, segments)
    n = max(1, int(sr * FRAME_S))
    k = len(x) // n
    powers = _frame_powers(x, sr)
    speech = mask[: k * n].reshape(k, n).mean(axis=1) > 0.5 if k else np.zeros(0, bool)
    if segments and speech.any() and (~speech).sum() * FRAME_S >= MIN_NOISE_S:
        return _snr(float(np.mean(powers[speech])), float(np.median(powers[~speech]))), "vad"
    return snr_percentile(x, sr), "percentile"


def normalize_loudness(
    x: np.ndarray, sr: int, target_dbfs: float = -20.0, ceiling: float = 0.97
) -> np.ndarray:
    """Scale so the speech RMS (VAD frames; the whole clip if none) is ``target_dbfs``.

    A look-ahead limiter keeps peaks under ``ceiling``, so loud targets never clip."""
    x = np.asarray(x, dtype=np.float32).reshape(-1)
    mask = vad.speech_mask(x, sr)
    level = dsp.rms(x[mask]) if mask.any() else dsp.rms(x)
    if level <= 0:
        return x.copy()
    return dsp.apply_gain(x, sr, dsp.db_to_gain(target_dbfs) / level, ceiling)


def assess(x: np.ndarray, sr: int, limits: QualityLimits | None = None) -> Assessment:
    lim = limits or QualityLimits()
    x = np.asarray(x, dtype=np.float32).reshape(-1)
    dur = len(x) / sr if sr else 0.0
    segs = vad.speech_segments(x, sr) if len(x) else []
    mask = vad.speech_mask(x, sr, segs)
    speech_s = float(sum(s.duration for s in segs))
    snr, method = estimate_snr(x, sr, segs) if len(x) else (0.0, "percentile")
    a = Assessment(
        duration_s=round(dur, 3),
        peak_dbfs=round(peak_dbfs(x), 2),
        rms_dbfs=round(rms_dbfs(x), 2),
        speech_rms_dbfs=round(rms_dbfs(x[mask]) if mask.any() else rms_dbfs(x), 2),
        clip_ratio=round(clip_ratio(x), 6),
        speech_s=round(speech_s, 3),
        speech_ratio=round(speech_s / dur, 3) if dur else 0.0,
        snr_db=round(snr, 2),
        snr_method=method,
    )
    add = a.problems.append
    if dur == 0:
        add(Problem("empty", "The recording contains no audio."))
        return a
    if dur < lim.min_duration_s:
        add(
            Problem(
                "too_short",
                f"The recording is {dur:.1f} s long; it must be at least "
                f"{lim.min_duration_s:.1f} s.",
            )
        )
    if dur > lim.max_duration_s:
        add(
            Problem(
                "too_long",
                f"The recording is {dur:.1f} s long; it must be at most "
                f"{lim.max_duration_s:.0f} s. Split it into shorter takes.",
            )
        )
    if a.peak_dbfs < lim.silent_peak_dbfs:
        add(
            Problem(
                "silent",
                "The recording is silent. Check that the microphone is connected and not muted.",
            )
        )
        return a
    if speech_s < lim.min_speech_s:
        add(Problem("no_speech", "No speech was found in the recording."))
    if a.clip_ratio > lim.max_clip_ratio:
        add(
            Problem(
                "clipped",
                f"{a.clip_ratio:.2%} of the recording is clipped (distorted at "
                "full scale). Lower the input gain and record again.",
            )
        )
    if a.speech_rms_dbfs < lim.min_speech_rms_dbfs:
        add(
            Problem(
                "too_quiet",
                f"The speech level is {a.speech_rms_dbfs:.0f} dBFS; it must be "
                f"at least {lim.min_speech_rms_dbfs:.0f} dBFS. Speak closer "
                "to the microphone or raise the input gain.",
            )
        )
    elif a.speech_rms_dbfs > lim.max_speech_rms_dbfs:
        add(
            Problem(
                "too_loud",
                f"The speech level is {a.speech_rms_dbfs:.0f} dBFS; it must be "
                f"at most {lim.max_speech_rms_dbfs:.0f} dBFS. Lower the "
                "input gain.",
            )
        )
    if speech_s >= lim.min_speech_s and a.snr_db < lim.min_snr_db:
        add(
            Problem(
                "too_noisy",
                f"The background noise is too loud (SNR {a.snr_db:.0f} dB; "
                f"at least {lim.min_snr_db:.0f} dB is needed). Record in a "
                "quieter room.",
            )
        )
    return a
