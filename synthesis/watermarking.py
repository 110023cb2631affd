"""The watermark step of the synthesis pipeline, and detection for auditors.

Every clip is marked with a payload derived from its request: HMAC-SHA256(key, request uuid),
truncated to each backend's payload size (40 bits built-in, 128 bits audiowmark; the shorter is
a prefix of the longer). The payload is stored on the request, so a detected payload maps back
to it by a database lookup. Keys come from WATERMARK_KEYS ("kid:base64secret,..."), current
first; detection tries them all so keys can be rotated.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from functools import lru_cache

import numpy as np
from django.conf import settings

from synthesis.watermark.base import WatermarkBackend, WatermarkError

logger = logging.getLogger(__name__)


class WatermarkFailed(RuntimeError):
    """The clip could not be marked; it must not leave the platform."""


@lru_cache(maxsize=1)
def keys() -> dict[str, bytes]:
    """Key id -> secret, current key first."""
    configured = getattr(settings, "WATERMARK_KEYS", "") or ""
    parsed: dict[str, bytes] = {}
    for item in filter(None, (part.strip() for part in configured.split(","))):
        key_id, _, secret = item.partition(":")
        parsed[key_id] = base64.b64decode(secret)
    if not parsed:
        # Development default, derived from SECRET_KEY (production refuses to start without one).
        parsed["dev"] = hashlib.sha256(f"timbre-watermark:{settings.SECRET_KEY}".encode()).digest()
    return parsed


def current_key() -> tuple[str, bytes]:
    key_id, secret = next(iter(keys().items()))
    return key_id, secret


def payload_for(request_uuid, key: bytes, bits: int) -> bytes:
    digest = hmac.new(key, request_uuid.bytes, hashlib.sha256).digest()
    return digest[: bits // 8]


@lru_cache(maxsize=1)
def backends() -> list[WatermarkBackend]:
    """The configured backends that are usable here, in order (the first is primary)."""
    from synthesis.watermark.audiowmark import AudiowmarkWatermark
    from synthesis.watermark.builtin import BuiltinWatermark

    known = {
        "builtin": lambda: BuiltinWatermark(strength=settings.WATERMARK_STRENGTH),
        "audiowmark": lambda: AudiowmarkWatermark(strength=settings.WATERMARK_AUDIOWMARK_STRENGTH),
    }
    chosen = []
    for name in settings.WATERMARK_BACKENDS:
        factory = known.get(name)
        if factory is None:
            raise WatermarkFailed(f"unknown watermark backend {name!r}")
        backend = factory()
        if backend.available():
            chosen.append(backend)
    if not chosen:
        raise WatermarkFailed("no watermark backend is available")
    return chosen


def watermark_clip(job, samples: np.ndarray, sr: int) -> np.ndarray:
    """Mark `samples` for request `job` with every available backend. Raises WatermarkFailed."""
    key_id, key = current_key()
    marked = samples
    try:
        for backend in backends():
            marked = backend.embed(marked, sr, payload_for(job.pk, key, backend.payload_bits), key)
    except WatermarkError as exc:
        raise WatermarkFailed(f"The clip could not be watermarked: {exc}") from exc
    primary = backends()[0]
    job.watermark_backend = primary.name
    job.watermark_key_id = key_id
    job.watermark_payload = payload_for(job.pk, key, primary.payload_bits).hex()
    return marked
