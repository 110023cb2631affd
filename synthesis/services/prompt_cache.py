"""Repeat-prompt cache: the engine's output, before the watermark, for text a tenant asks for
again (IVR prompts, greetings, notifications).

An entry is keyed by the tenant (never shared across tenants), the model version (which names
the voice version of a custom voice), the voice, the normalised text and the controls. It holds
the unmarked audio only: every delivery is still watermarked with its own payload, charged and
recorded in the ledger by the pipeline, exactly as a miss is.

Entries live in the `prompts` cache (Redis in production, files under the var directory in
embedded mode, so every process shares them) and are bounded: clips over
PROMPT_CACHE_MAX_SECONDS are not kept, entries expire after PROMPT_CACHE_TTL_S, and a tenant
stores at most PROMPT_CACHE_MAX_ENTRIES per TTL period, so the cache holds at most about
tenants x entries x seconds x 44 kB (16-bit PCM at 22.05 kHz, before compression).
Revoking a consent, deleting a voice or retiring a version bumps a generation that is part of
every key, so nothing cached before is ever found again.
"""

from __future__ import annotations

import hashlib
import json
import zlib

import numpy as np
from django.conf import settings
from django.core.cache import caches

from core import metrics

GENERATION_TTL_S = 400 * 24 * 3600  # outlives every entry it guards


def _cache():
    return caches["prompts"]


def _generation_keys(job) -> list[str]:
    return [f"gen:voice:{job.voice_id}", f"gen:version:{job.model_version}"]


def key_for(job, segments) -> str | None:
    """The entry's key (it reads the voice's and the version's generations), or None when the
    cache is off. Computed once per request, for the lookup and the store."""
    if not settings.PROMPT_CACHE_ENABLED:
        return None
    generations = _cache().get_many(_generation_keys(job))
    material = {
        "tenant": str(job.tenant_id),
        "model_version": job.model_version,
        "voice": str(job.voice_id),
        "segments": [[s.text, s.rate, s.pitch_st, s.pause_after_ms] for s in segments],
        "controls": job.controls or {},
        "generations": [generations.get(k, 0) for k in _generation_keys(job)],
    }
    digest = hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()
    return f"clip:{job.tenant_id}:{digest}"


def lookup(key: str | None) -> tuple[np.ndarray, int] | None:
    """The unmarked clip made earlier for this exact request, or None."""
    if key is None or not settings.PROMPT_CACHE_ENABLED:
        return None
    packed = _cache().get(key)
    metrics.PROMPT_CACHE.labels(result="hit" if packed else "miss").inc()
    if packed is None:
        return None
    sr = int.from_bytes(packed[:4], "little")
    pcm = np.frombuffer(zlib.decompress(packed[4:]), dtype=np.int16)
    return pcm.astype(np.float32) / 32767.0, sr


def store(key: str | None, tenant_id, clip: np.ndarray, sr: int) -> bool:
    if key is None or not settings.PROMPT_CACHE_ENABLED:
        return False
    if len(clip) > settings.PROMPT_CACHE_MAX_SECONDS * sr:
        return False
    if _count(f"stored:{tenant_id}", settings.PROMPT_CACHE_TTL_S) > (
        settings.PROMPT_CACHE_MAX_ENTRIES
    ):
        return False  # this tenant's share is full until its period ends
    pcm = (np.clip(clip, -1.0, 1.0) * 32767.0).round().astype(np.int16)
    packed = int(sr).to_bytes(4, "little") + zlib.compress(pcm.tobytes(), 1)
    _cache().set(key, packed, settings.PROMPT_CACHE_TTL_S)
    return True


def _count(key: str, ttl: int) -> int:
    cache = _cache()
    cache.add(key, 0, ttl)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, ttl)
        return 1


def forget_voice(voice_id) -> None:
    """Nothing cached for this voice is used again (its consent revoked)."""
    _count(f"gen:voice:{voice_id}", GENERATION_TTL_S)


def forget_version(model_version_id: str) -> None:
    """Nothing cached for this model version is used again (retired)."""
    _count(f"gen:version:{model_version_id}", GENERATION_TTL_S)
