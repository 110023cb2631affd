"""Per-process cache of loaded engines, keyed by model version id.

Loaded on first use (a remote artefact is first fetched to a local, checksum-verified copy by
the `ArtefactCache` the app configures); each new version is sanity-checked with a short
synthesis before it is served. `swap` loads a replacement beside the live one and switches
atomically, so requests in flight keep the engine they started with. Nothing is shared between
tenants except immutable model weights.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable

import numpy as np

from speech.engines.artefacts import ArtefactCache
from speech.engines.base import Engine, ModelVersionSpec, SynthesisControls

logger = logging.getLogger(__name__)
SANITY_TEXT = "Voice check."


class EngineLoadError(RuntimeError):
    pass


def engine_class(name: str) -> type[Engine]:
    if name == "piper":
        from speech.engines.piper_engine import PiperEngine

        return PiperEngine
    if name == "piper-adapted":
        from speech.engines.adapted_engine import AdaptedPiperEngine

        return AdaptedPiperEngine
    raise EngineLoadError(f"unknown engine {name!r}")


def create_engine(spec: ModelVersionSpec, threads: int = 1) -> Engine:
    engine = engine_class(spec.engine)(threads=threads)
    engine.load(spec)
    return engine


def sanity_check(engine: Engine) -> None:
    audio = engine.synthesize(SANITY_TEXT, SynthesisControls())
    if audio.size < engine.sample_rate * 0.2 or not np.isfinite(audio).all():
        raise EngineLoadError(f"{engine.spec.id} failed its sanity synthesis")
    if float(np.sqrt(np.mean(audio.astype(np.float64) ** 2))) < 1e-4:
        raise EngineLoadError(f"{engine.spec.id} produced silence in its sanity synthesis")


class EngineCache:
    def __init__(
        self,
        max_engines: int = 3,
        factory: Callable[[ModelVersionSpec], Engine] = create_engine,
        artefacts: ArtefactCache | None = None,
    ):
        self.max_engines = max_engines
        self.factory = factory
        self.artefacts = artefacts
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._lock = threading.Lock()

    def _load(self, spec: ModelVersionSpec) -> Engine:
        if spec.artefact_key and not spec.artefact_path:
            if self.artefacts is None:
                raise EngineLoadError(f"{spec.id} is remote and no artefact cache is configured")
            spec = self.artefacts.resolve(spec, engine_class(spec.engine).artefact_companions)
        engine = self.factory(spec)
        try:
            sanity_check(engine)
        except Exception:
            engine.close()
            raise
        logger.info("loaded model version %s", spec.id)
        return engine

    def get(self, spec: ModelVersionSpec) -> Engine:
        with self._lock:
            engine = self._engines.get(spec.id)
            if engine is not None:
                self._engines.move_to_end(spec.id)
                return engine
        engine = self._load(spec)  # outside the lock: other versions keep serving
        with self._lock:
            self._engines.setdefault(spec.id, engine)
            self._engines.move_to_end(spec.id)
            self._evict()
            return self._engines[spec.id]

    def swap(self, spec: ModelVersionSpec) -> Engine:
        """Load and sanity-check a version beside the live one, then switch atomically.

        The old engine is only dropped, not closed: a request still holding it finishes on
        it, and its memory is released when the last reference goes.
        """
        fresh = self._load(spec)
        with self._lock:
            self._engines[spec.id] = fresh
            self._engines.move_to_end(spec.id)
            self._evict()
        return fresh

    def _evict(self) -> None:
        while len(self._engines) > self.max_engines:
            version, _ = self._engines.popitem(last=False)
            logger.info("evicting model version %s", version)

    def loaded(self) -> list[str]:
        with self._lock:
            return list(self._engines)
