"""Watermark backend interface shared by the built-in and external backends."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Literal

import numpy as np

Verdict = Literal["watermarked", "not_detected", "inconclusive"]


class WatermarkError(Exception):
    """Raised when a clip cannot carry (or be checked for) a watermark.

    Callers embedding marks must fail closed on this error: do not ship the clip.
    """


@dataclass
class Detection:
    verdict: Verdict
    payload: bytes | None = None
    key_id: str | None = None
    confidence: float = 0.0
    reason: str = ""

    def to_dict(self) -> dict:
        return {
            "verdict": self.verdict,
            "payload": self.payload.hex() if self.payload is not None else None,
            "key_id": self.key_id,
            "confidence": round(float(self.confidence), 4),
            "reason": self.reason,
        }


class WatermarkBackend(abc.ABC):
    """A watermarking algorithm.

    ``payload`` is exactly ``payload_bits // 8`` bytes.  ``keys`` maps a key id to
    the secret key bytes; detection tries every key and reports which one matched.
    """

    name: str = "abstract"
    payload_bits: int = 0
    # Whether ``stream(sr, payload, key)`` gives an embedder with ``write``/``close`` that
    # marks a clip piece by piece (the built-in mark); others need the whole clip.
    streaming: bool = False

    def available(self) -> bool:
        return True

    @abc.abstractmethod
    def embed(self, samples: np.ndarray, sr: int, payload: bytes, key: bytes) -> np.ndarray:
        """Return the marked signal (float32 mono, same length) or raise WatermarkError."""

    @abc.abstractmethod
    def detect(self, samples: np.ndarray, sr: int, keys: dict[str, bytes]) -> Detection:
        """Look for a mark made with any of ``keys``."""
