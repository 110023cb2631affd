"""The per-process engine cache of registered model versions.

speech's `EngineCache`, configured from settings, with remote artefacts (fine-tuned models in
object storage) fetched through `core.storage` into `MODEL_CACHE_DIR/<sha256>/`. Workers call
`engine_cache().get(rollout.services.spec_for(version))`.
"""

from __future__ import annotations

from functools import lru_cache, partial
from pathlib import Path

from django.conf import settings

from core.storage import get_storage
from speech.engines.artefacts import ArtefactCache
from speech.engines.cache import EngineCache, create_engine


def fetch_artefact(key: str, dest: Path) -> None:
    dest.write_bytes(get_storage().get(key))


@lru_cache(maxsize=1)
def engine_cache() -> EngineCache:
    return EngineCache(
        max_engines=settings.SYNTHESIS_ENGINE_CACHE_SIZE,
        factory=partial(create_engine, threads=settings.TIMBRE_ONNX_THREADS),
        artefacts=ArtefactCache(settings.MODEL_CACHE_DIR, fetch_artefact),
    )
