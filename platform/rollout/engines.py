"""The per-process engine cache of registered model versions, and its hot swap.

speech's `EngineCache`, configured from settings, with remote artefacts (fine-tuned models in
object storage) fetched through `core.storage` into `MODEL_CACHE_DIR/<sha256>/`. Workers call
`engine_cache().lease(rollout.services.spec_for(version))` and release it when the request is
done.

Hot swap: each worker process runs `sync` every ENGINE_SYNC_INTERVAL_S in a daemon thread
(`start_sync`, from the worker's `worker_process_init`). It reads the live set
(`rollout.services.live`), drops what is no longer live, then preloads the live versions not
yet loaded (load, warm up, sanity check) so they are ready before they take traffic. A request
in flight holds its engine through its lease, so dropping a version never cuts it off.
"""

from __future__ import annotations

import logging
import threading
from functools import lru_cache, partial
from pathlib import Path

from django.conf import settings
from django.db import close_old_connections, connection

from core import metrics
from core.storage import get_storage
from speech.engines.artefacts import ArtefactCache
from speech.engines.cache import EngineCache, create_engine

logger = logging.getLogger(__name__)


def fetch_artefact(key: str, dest: Path) -> None:
    dest.write_bytes(get_storage().get(key))


@lru_cache(maxsize=1)
def engine_cache() -> EngineCache:
    return EngineCache(
        max_engines=settings.SYNTHESIS_ENGINE_CACHE_SIZE,
        factory=partial(create_engine, threads=settings.TIMBRE_ONNX_THREADS),
        artefacts=ArtefactCache(settings.MODEL_CACHE_DIR, fetch_artefact),
        memory_budget_bytes=settings.ENGINE_MEMORY_BUDGET_MB << 20,
    )


def sync(cache: EngineCache | None = None) -> dict[str, list[str]]:
    """One hot-swap pass: follow the live set. Returns what it dropped and loaded."""
    from rollout.services.live import live_set
    from rollout.services.registry import spec_for

    cache = cache or engine_cache()
    live = live_set()
    cache.set_live(live.keep)
    dropped = cache.retain(live.keep)  # first, so the memory is free for what comes next
    loaded = cache.preload(spec_for(version) for version in live.preload)
    metrics.record_engines(cache.snapshot(), dropped, cache.memory_budget_bytes)
    if dropped or loaded:
        logger.info("engine sync: loaded %s, dropped %s", loaded, dropped)
    return {"loaded": loaded, "dropped": dropped}


_started = threading.Event()
_stop = threading.Event()  # for tests and shutdown; daemon threads otherwise end with the process


def start_sync(interval_s: float | None = None) -> threading.Thread | None:
    """Run `sync` every ``interval_s`` (ENGINE_SYNC_INTERVAL_S) in a daemon thread of this
    process; once per process, and not at all when the interval is 0."""
    interval = settings.ENGINE_SYNC_INTERVAL_S if interval_s is None else interval_s
    if interval <= 0 or _started.is_set():
        return None
    _started.set()

    def loop() -> None:
        while True:
            try:
                close_old_connections()
                sync()
            except Exception:  # a bad pass must not end hot swap for the process
                logger.exception("engine sync failed")
            finally:
                connection.close()  # this thread's own connection; reopened next pass
            _stop.wait(interval)
            if _stop.is_set():
                return

    thread = threading.Thread(target=loop, name="engine-sync", daemon=True)
    thread.start()
    return thread
