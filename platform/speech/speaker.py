"""Speaker embeddings: resemblyzer's GE2E encoder (256-d, weights inside the wheel).

One encoder per device per process, loaded lazily under a lock. Embeddings are unit-norm
float32 vectors, so the cosine of two is their dot product. torch is imported only inside
functions, so importing this module stays cheap and framework-free.

``VERIFY_THRESHOLD`` is the consent check's same-speaker threshold: the cosine between a
talent's mean enrolment embedding (5 training recordings) and one consent-like recording must
reach it. It was calibrated with ``bench/speaker_calibration.py`` on the synthetic talents of
``speech.testing.talents`` (docs/benchmarks.md, "Speaker verification and voice adaptation"):
genuine trials min 0.873 / median 0.940 (44 trials), impostor trials median 0.603 / max 0.902
(572 trials, 13 other voices). The threshold is the highest impostor score plus 0.01, so 0 of
572 impostor trials pass; 18 % of genuine trials are rejected at it (at 0.88: 2 false accepts,
both one hard espeak pair, and 2.3 % false rejects). Recalibrate on real recordings before
relying on it for people.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from speech import dsp

ENCODER_SAMPLE_RATE = 16000
EMBEDDING_DIM = 256
MODEL_VERSION = "resemblyzer-ge2e-0.1.4"

# Calibrated in bench/speaker_calibration.py (docs/benchmarks.md): mean of 5 enrolment
# embeddings vs one consent-like utterance; 0 false accepts on the impostor set, FRR 18 %.
VERIFY_THRESHOLD = 0.912

_encoders: dict[str, object] = {}
_lock = threading.Lock()


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def get_encoder(device: str | None = None):
    """The process-wide ``resemblyzer.VoiceEncoder`` for ``device`` (CUDA when available)."""
    device = device or default_device()
    with _lock:
        enc = _encoders.get(device)
        if enc is None:
            from resemblyzer import VoiceEncoder

            enc = VoiceEncoder(device=device, verbose=False)
            enc.eval()
            _encoders[device] = enc
        return enc


def _prepare(samples: np.ndarray, sr: int) -> np.ndarray:
    from resemblyzer import preprocess_wav

    wav = dsp.resample(np.asarray(samples, dtype=np.float32).reshape(-1), sr, ENCODER_SAMPLE_RATE)
    # Volume normalisation and long-silence trimming (webrtcvad), as the encoder was trained.
    return preprocess_wav(wav, source_sr=ENCODER_SAMPLE_RATE)


def embed(samples: np.ndarray, sr: int, device: str | None = None) -> np.ndarray:
    """Unit-norm 256-d embedding of one utterance (float32)."""
    wav = _prepare(samples, sr)
    if len(wav) < ENCODER_SAMPLE_RATE // 4:
        raise ValueError("too little speech for a speaker embedding (need at least 0.25 s)")
    import torch

    enc = get_encoder(device)
    with torch.inference_mode():
        e = enc.embed_utterance(wav)
    return _unit(np.asarray(e, dtype=np.float32))


def mean_embedding(embeddings: Sequence[np.ndarray]) -> np.ndarray:
    """Unit-norm mean of several embeddings (an enrolment)."""
    if len(embeddings) == 0:
        raise ValueError("mean_embedding needs at least one embedding")
    return _unit(np.mean(np.stack([np.asarray(e, dtype=np.float32) for e in embeddings]), 0))


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, dtype=np.float64).reshape(-1)
    b = np.asarray(b, dtype=np.float64).reshape(-1)
    den = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b / den) if den > 0 else 0.0


def verify(
    enrolment: np.ndarray, candidate: np.ndarray, threshold: float = VERIFY_THRESHOLD
) -> tuple[bool, float]:
    """(accepted, score): the candidate embedding against a (mean) enrolment embedding."""
    score = cosine(enrolment, candidate)
    return score >= threshold, score


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return (v / n).astype(np.float32) if n > 0 else v.astype(np.float32)
