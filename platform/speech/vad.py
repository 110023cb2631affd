"""Speech presence with silero-vad (the ONNX model inside the ``silero-vad`` wheel).

Run through onnxruntime directly, without importing the ``silero_vad`` package (which imports
torch and sets torch's thread count process-wide). The model sees 16 kHz audio in 512-sample
windows (32 ms) with 64 samples of context and a recurrent state; ``speech_probabilities``
returns one probability per window. Segments follow silero's own rules in simplified form:
frames above ``threshold`` start speech, frames below ``threshold - 0.15`` for
``min_silence_ms`` end it, segments shorter than ``min_speech_ms`` are dropped.
"""

from __future__ import annotations

import importlib.util
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from speech import dsp
from speech.onnx_sessions import cpu_session

VAD_SAMPLE_RATE = 16000
WINDOW = 512
CONTEXT = 64
MODEL_FILE = "silero_vad.onnx"
MODEL_VERSION = "silero-vad-6.2.3-onnx"

_session = None
_lock = threading.Lock()


def model_path() -> Path:
    spec = importlib.util.find_spec("silero_vad")  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the silero-vad package is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / MODEL_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the silero-vad wheel")
    return path


def get_session(threads: int = 1):
    global _session
    with _lock:
        if _session is None:
            _session = cpu_session(model_path(), threads)
        return _session


def speech_probabilities(samples: np.ndarray, sr: int) -> np.ndarray:
    """One speech probability per 32 ms window (16 kHz, 512 samples)."""
    x = dsp.resample(np.asarray(samples, dtype=np.float32).reshape(-1), sr, VAD_SAMPLE_RATE)
    n = int(np.ceil(len(x) / WINDOW))
    if n == 0:
        return np.zeros(0, dtype=np.float32)
    x = np.pad(x, (0, n * WINDOW - len(x)))
    sess = get_session()
    state = np.zeros((2, 1, 128), dtype=np.float32)
    context = np.zeros((1, CONTEXT), dtype=np.float32)
    sr_arr = np.array(VAD_SAMPLE_RATE, dtype=np.int64)
    probs = np.empty(n, dtype=np.float32)
    for i in range(n):
        chunk = np.concatenate([context, x[None, i * WINDOW : (i + 1) * WINDOW]], axis=1)
        out, state = sess.run(None, {"input": chunk, "state": state, "sr": sr_arr})
        probs[i] = float(out.reshape(-1)[0])
        context = chunk[:, -CONTEXT:]
    return probs


@dataclass(frozen=True)
class Segment:
    start: float  # seconds
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


def speech_segments(
    samples: np.ndarray,
    sr: int,
    threshold: float = 0.5,
    min_speech_ms: float = 250.0,
    min_silence_ms: float = 100.0,
    probs: np.ndarray | None = None,
) -> list[Segment]:
    """Speech segments in seconds (of the input's timeline)."""
    p = speech_probabilities(samples, sr) if probs is None else probs
    hop = WINDOW / VAD_SAMPLE_RATE
    neg = max(threshold - 0.15, 0.01)
    min_sil = max(1, int(round(min_silence_ms / 1000 / hop)))
    segs: list[tuple[int, int]] = []
    start = None
    below = 0
    for i, v in enumerate(p):
        if start is None:
            if v >= threshold:
                start, below = i, 0
        elif v < neg:
            below += 1
            if below >= min_sil:
                segs.append((start, i - below + 1))
                start = None
        else:
            below = 0
    if start is not None:
        segs.append((start, len(p) - below if below else len(p)))
    total = len(samples) / sr
    out = [
        Segment(a * hop, min(b * hop, total))
        for a, b in segs
        if (b - a) * hop * 1000 >= min_speech_ms
    ]
    return out


def speech_seconds(samples: np.ndarray, sr: int, **kw) -> float:
    return float(sum(s.duration for s in speech_segments(samples, sr, **kw)))


def speech_ratio(samples: np.ndarray, sr: int, **kw) -> float:
    total = len(samples) / sr if sr else 0.0
    return speech_seconds(samples, sr, **kw) / total if total > 0 else 0.0


def speech_mask(samples: np.ndarray, sr: int, segments: list[Segment] | None = None) -> np.ndarray:
    """Boolean per-sample mask of the speech segments."""
    segments = speech_segments(samples, sr) if segments is None else segments
    mask = np.zeros(len(samples), dtype=bool)
    for s in segments:
        mask[int(s.start * sr) : int(np.ceil(s.end * sr))] = True
    return mask


def trim(samples: np.ndarray, sr: int, pad_ms: float = 100.0, **kw) -> np.ndarray:
    """Drop leading and trailing non-speech, keeping ``pad_ms`` around the speech.

    Audio with no speech at all comes back empty."""
    x = np.asarray(samples, dtype=np.float32).reshape(-1)
    segs = speech_segments(x, sr, **kw)
    if not segs:
        return x[:0].copy()
    pad = int(sr * pad_ms / 1000)
    a = max(0, int(segs[0].start * sr) - pad)
    b = min(len(x), int(np.ceil(segs[-1].end * sr)) + pad)
    return x[a:b].copy()
