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

from speech.watermark.base import Detection, WatermarkBackend, WatermarkError

logger = logging.getLogger(__name__)


# Every backend's payload is a prefix of one HMAC, so its first 40 bits find the request.
LOOKUP_BITS = 40


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


def make_backend(name: str) -> WatermarkBackend:
    from speech.watermark.audiowmark import AudiowmarkWatermark
    from speech.watermark.builtin import BuiltinWatermark

    if name == "builtin":
        return BuiltinWatermark(strength=settings.WATERMARK_STRENGTH)
    if name == "audiowmark":
        return AudiowmarkWatermark(
            binary=settings.WATERMARK_AUDIOWMARK_BINARY,
            strength=settings.WATERMARK_AUDIOWMARK_STRENGTH,
        )
    raise WatermarkFailed(f"unknown watermark backend {name!r}")


@lru_cache(maxsize=1)
def backends() -> list[WatermarkBackend]:
    """The configured backends that are usable here, in order (the first is primary)."""
    chosen = [b for b in map(make_backend, settings.WATERMARK_BACKENDS) if b.available()]
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
    _record(job, "+".join(backend.name for backend in backends()), key_id, key)
    return marked


def _record(job, backend_name: str, key_id: str, key: bytes) -> None:
    job.watermark_backend = backend_name
    job.watermark_key_id = key_id
    # Stored as the lookup key: the 40-bit prefix every backend's payload starts with.
    job.watermark_payload = payload_for(job.pk, key, LOOKUP_BITS).hex()


class MarkedStream:
    """Marks one streamed request piece by piece: ``write`` returns the marked samples that
    are final so far, ``close`` the rest. Raises WatermarkFailed, as ``watermark_clip``."""

    def __init__(self, embedder):
        self._embedder = embedder

    def write(self, samples: np.ndarray) -> np.ndarray:
        return self._call(self._embedder.write, samples)

    def close(self) -> np.ndarray:
        return self._call(self._embedder.close)

    @staticmethod
    def _call(step, *args) -> np.ndarray:
        try:
            return step(*args)
        except WatermarkError as exc:
            raise WatermarkFailed(f"The clip could not be watermarked: {exc}") from exc


def watermark_stream(job, sr: int) -> MarkedStream:
    """A streaming marker for request `job`. Only backends that mark piece by piece can
    (the built-in one; audiowmark needs the whole clip), so streamed audio carries theirs."""
    key_id, key = current_key()
    backend = next((b for b in backends() if b.streaming), None)
    if backend is None:
        raise WatermarkFailed("no configured watermark backend can mark a stream")
    embedder = backend.stream(sr, payload_for(job.pk, key, backend.payload_bits), key)
    _record(job, backend.name, key_id, key)
    return MarkedStream(embedder)


# --- detection ---------------------------------------------------------------------------
def detect_samples(samples: np.ndarray, sr: int) -> tuple[str, Detection]:
    """Look for a mark with every configured key. Returns (backend name, Detection).

    The built-in mark decodes on its own. Where audiowmark is installed and the built-in mark
    is not found (long clips are its strength), each pattern `audiowmark get` prints is looked
    up by its 40-bit prefix (our payloads are prefixes of one HMAC) and confirmed by
    recomputing the request's full 128-bit payload, so noise patterns never match.
    """
    builtin = make_backend("builtin")
    detection = builtin.detect(samples, sr, keys())
    external = make_backend("audiowmark")
    if detection.verdict == "watermarked" or not external.available():
        return builtin.name, detection
    for key_id, key in keys().items():
        for pattern in external.patterns(samples, sr, key):
            prefix = pattern[: LOOKUP_BITS // 8]
            for job in find_requests(prefix.hex(), key_id):
                if payload_for(job.pk, key, external.payload_bits) == pattern:
                    return external.name, Detection(
                        "watermarked",
                        payload=prefix,
                        key_id=key_id,
                        confidence=0.99,
                        reason="audiowmark pattern matches a stored request",
                    )
    return builtin.name, detection


def find_requests(payload_hex: str, key_id: str, limit: int = 10) -> list:
    """Requests a decoded payload belongs to, across tenants (callers decide what to show).

    Usually one; a 40-bit payload can collide (about N / 2**40 per lookup with N stored
    requests), so callers must handle several.
    """
    from synthesis.models import SynthesisRequest

    return list(
        SynthesisRequest.dangerously_unscoped.select_related("api_key", "tenant")
        .filter(watermark_payload=payload_hex, watermark_key_id=key_id)
        .order_by("-created_at")[:limit]
    )


def _describe(job, key_id: str) -> dict:
    return {
        "id": str(job.pk),
        "request_id": job.request_id,
        "tenant": job.tenant.slug,
        "api_key": job.api_key.masked if job.api_key else None,
        "voice": job.voice_slug,
        "model_version": job.model_version,
        "created_at": job.created_at.isoformat(),
        "text_sha256": job.text_sha256,
        "key_id": key_id,
    }


def identify(tenant, data: bytes, context=None) -> dict:
    """Detect a mark in an uploaded clip and say what it traces to, as far as `tenant` may
    know: full details for its own requests; only "another tenant" for anyone else's. Every
    detection is audited."""
    from audit import services as audit
    from speech import audio

    samples, sr = audio.decode(
        data,
        max_bytes=settings.WATERMARK_DETECT_MAX_BYTES,
        max_duration_s=settings.WATERMARK_DETECT_MAX_SECONDS,
    )
    backend, detection = detect_samples(samples, sr)
    result = {
        "verdict": detection.verdict,
        "backend": backend,
        "confidence": round(float(detection.confidence), 4),
        "reason": detection.reason,
    }
    own: list = []
    if detection.verdict == "watermarked":
        matches = find_requests(detection.payload.hex(), detection.key_id)
        own = [job for job in matches if job.tenant_id == tenant.pk]
        if not matches:
            result.update(
                verdict="inconclusive",
                reason="The mark decodes to no request this deployment made.",
            )
        elif len(matches) > 1:
            # A payload collision: say so rather than name the wrong request.
            result["ambiguous"] = True
            result["candidates"] = [_describe(job, detection.key_id) for job in own]
            result["reason"] = f"The mark matches {len(matches)} requests; " + (
                "candidates from this tenant are listed." if own else "none is this tenant's."
            )
        elif own:
            result["request"] = _describe(own[0], detection.key_id)
            result["reason"] = "The clip was made by this tenant."
        else:
            result["owner"] = "another_tenant"
            result["reason"] = "This is a Timbre clip made by another tenant."
    job = own[0] if len(own) == 1 else None
    audit.record(
        "watermark.detect",
        tenant=tenant,
        context=context,
        target=job if own else None,
        after={
            "verdict": result["verdict"],
            "owner": result.get("owner", "self" if own else None),
            "clip_sha256": hashlib.sha256(data).hexdigest(),
            "seconds": round(len(samples) / sr, 2),
        },
    )
    return result
