"""Per-process cache of loaded engines, keyed by model version id.

Loaded on first use (a remote artefact is first fetched to a local, checksum-verified copy by
the `ArtefactCache` the app configures); each new version is sanity-checked with a short
synthesis before it is served. `swap` loads a replacement beside the live one and switches
atomically, so requests in flight keep the engine they started with. Nothing is shared between
tenants except immutable model weights.

Hot swap: the app tells the cache which versions are live (`set_live`) and preloads them
(`preload`); `retain` drops the rest. Memory is bounded by a count (`max_engines`) and a budget
(`memory_budget_bytes`, each engine's footprint estimated at load): least recently used
non-live engines go first, then idle live ones. A request holds its engine with `lease`: an
engine dropped while leased is closed only when its last lease ends, and it still counts
against the budget until then, so the budget is never exceeded.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from speech.engines.artefacts import ArtefactCache
from speech.engines.base import Engine, ModelVersionSpec, SynthesisControls

logger = logging.getLogger(__name__)
SANITY_TEXT = "Voice check."
# Resident memory of a loaded ONNX voice relative to its artefact files: the stock Piper voice
# (60 MB .onnx) grows a process by 105-109 MB once loaded and warmed up.
MEMORY_PER_ARTEFACT_BYTE = 1.75


class EngineLoadError(RuntimeError):
    pass


class EngineBudgetExceeded(EngineLoadError):
    """The version does not fit the memory budget, even with every idle engine dropped."""


def engine_class(name: str) -> type[Engine]:
    if name == "piper":
        from speech.engines.piper_engine import PiperEngine

        return PiperEngine
    if name == "piper-adapted":
        from speech.engines.adapted_engine import AdaptedPiperEngine

        return AdaptedPiperEngine
    if name == "faulty" and os.environ.get("TIMBRE_ENABLE_TEST_ENGINES") == "1":
        # Test-only: a version that fails on purpose (speech/testing/faulty_engine.py).
        from speech.testing.faulty_engine import FaultyEngine

        return FaultyEngine
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


def _rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def artefact_bytes(engine: Engine) -> int:
    """Size of the engine's artefact files (primary plus companions) on disk."""
    path = engine.spec.artefact_path
    if not path:
        return 0
    files = [Path(path), *(Path(f"{path}{suffix}") for suffix in engine.artefact_companions)]
    return sum(f.stat().st_size for f in files if f.is_file())


@dataclass
class _Entry:
    engine: Engine
    size: int  # estimated bytes
    leases: int = 0
    used_at: float = field(default_factory=time.monotonic)
    # Handed out by `get` (unleased): somebody may still use it, so it is never closed by the
    # cache, only dropped (its memory goes with the last reference).
    shared: bool = False


class Lease:
    """One request's hold on an engine (a context manager; `release` is idempotent)."""

    def __init__(self, cache: EngineCache, entry: _Entry):
        self._cache, self._entry = cache, entry
        self.engine = entry.engine

    def release(self) -> None:
        if self._entry is not None:
            self._cache._release(self._entry)
            self._entry = None

    def __enter__(self) -> Engine:
        return self.engine

    def __exit__(self, *exc: object) -> None:
        self.release()


class EngineCache:
    preload_retry_s = 300.0  # a version whose preload failed is tried again after this

    def __init__(
        self,
        max_engines: int = 3,
        factory: Callable[[ModelVersionSpec], Engine] = create_engine,
        artefacts: ArtefactCache | None = None,
        memory_budget_bytes: int = 0,  # 0: bounded by count only
    ):
        self.max_engines = max_engines
        self.memory_budget_bytes = memory_budget_bytes
        self.factory = factory
        self.artefacts = artefacts
        self._engines: OrderedDict[str, _Entry] = OrderedDict()  # least recently used first
        self._retiring: list[_Entry] = []  # dropped while leased: closed at the last release
        self._live: frozenset[str] = frozenset()
        self._sizes: dict[str, int] = {}  # estimates of every version loaded once
        self._failed: dict[str, float] = {}  # preloads that failed, and when
        self._lock = threading.Lock()
        self._load_lock = threading.Lock()  # one load at a time keeps the RSS estimate honest

    # ------------------------------------------------------------------ loading

    def _load(self, spec: ModelVersionSpec) -> _Entry:
        if spec.artefact_key and not spec.artefact_path:
            if self.artefacts is None:
                raise EngineLoadError(f"{spec.id} is remote and no artefact cache is configured")
            spec = self.artefacts.resolve(spec, engine_class(spec.engine).artefact_companions)
        with self._load_lock:
            before = _rss_bytes()
            engine = self.factory(spec)
            try:
                sanity_check(engine)  # also the warm-up: the first inference allocates arenas
            except Exception:
                engine.close()
                raise
            after = _rss_bytes()
        grown = after - before if before is not None and after is not None else 0
        size = max(grown, int(artefact_bytes(engine) * MEMORY_PER_ARTEFACT_BYTE))
        self._sizes[spec.id] = size
        logger.info("loaded model version %s (~%d MB)", spec.id, size >> 20)
        return _Entry(engine, size)

    def _insert(
        self, spec_id: str, entry: _Entry, *, replace: bool, evict_live: bool = True
    ) -> _Entry:
        """Add a freshly loaded engine, making room by eviction (call with the lock held)."""
        current = self._engines.get(spec_id)
        if current is not None and not replace:
            self._close_later(entry)  # another thread loaded it first
            current.used_at = time.monotonic()
            self._engines.move_to_end(spec_id)
            return current
        if current is not None:
            self._drop(spec_id)
        if not self._make_room(entry.size, 1, evict_live=evict_live):
            self._close_later(entry)
            raise EngineBudgetExceeded(
                f"{spec_id} (~{entry.size >> 20} MB) does not fit the engine memory budget "
                f"({self.memory_budget_bytes >> 20} MB, {self._held() >> 20} MB in use)"
            )
        self._engines[spec_id] = entry
        return entry

    def _entry(self, spec: ModelVersionSpec) -> _Entry:
        with self._lock:
            entry = self._engines.get(spec.id)
            if entry is not None:
                entry.used_at = time.monotonic()
                self._engines.move_to_end(spec.id)
                return entry
        loaded = self._load(spec)  # outside the lock: other versions keep serving
        with self._lock:
            return self._insert(spec.id, loaded, replace=False)

    def get(self, spec: ModelVersionSpec) -> Engine:
        """The engine for ``spec``, loaded if needed. Not held: callers that may outlive an
        eviction (a request) use `lease`."""
        entry = self._entry(spec)
        entry.shared = True
        return entry.engine

    def lease(self, spec: ModelVersionSpec) -> Lease:
        """The engine for ``spec``, held until the lease is released: eviction or a swap may
        drop it from the cache meanwhile, but it is closed only after the holder is done."""
        while True:
            entry = self._entry(spec)
            with self._lock:
                if self._engines.get(spec.id) is entry:  # not evicted between the two locks
                    entry.leases += 1
                    return Lease(self, entry)

    def _release(self, entry: _Entry) -> None:
        with self._lock:
            entry.leases -= 1
            if entry.leases == 0 and entry in self._retiring:
                self._retiring.remove(entry)
                if not entry.shared:
                    entry.engine.close()

    def swap(self, spec: ModelVersionSpec) -> Engine:
        """Load and sanity-check a version beside the live one, then switch atomically.

        The old engine is dropped; a request still holding it finishes on it, and it is closed
        when that request releases it.
        """
        fresh = self._load(spec)
        with self._lock:
            return self._insert(spec.id, fresh, replace=True).engine

    # ------------------------------------------------------------------ hot swap

    def set_live(self, version_ids: Iterable[str]) -> None:
        """The versions that may take traffic now: evicted last."""
        with self._lock:
            self._live = frozenset(version_ids)

    def preload(self, specs: Iterable[ModelVersionSpec]) -> list[str]:
        """Load (load, warm up, sanity-check) the given live versions that are not loaded yet,
        in order of priority, so they serve their first request warm. Preloading evicts only
        idle non-live engines; a version that does not fit then is skipped (it loads on demand,
        and is not tried again while its known size does not fit). Returns the ids loaded."""
        loaded = []
        for spec in specs:
            with self._lock:
                if spec.id in self._engines:
                    continue
                known = self._sizes.get(spec.id)
                if known is not None and not self._make_room(known, 1, evict_live=False):
                    continue
            failed = self._failed.get(spec.id)
            if failed is not None and time.monotonic() - failed < self.preload_retry_s:
                continue
            try:
                entry = self._load(spec)
            except Exception:  # a broken version must not stop the others from loading
                logger.exception("preloading %s failed", spec.id)
                self._failed[spec.id] = time.monotonic()
                continue
            self._failed.pop(spec.id, None)
            with self._lock:
                if spec.id in self._engines:
                    self._close_later(entry)
                    continue
                try:
                    self._insert(spec.id, entry, replace=False, evict_live=False)
                except EngineBudgetExceeded as exc:
                    logger.warning("not preloading: %s", exc)
                    continue
            loaded.append(spec.id)
        return loaded

    def retain(self, version_ids: Iterable[str]) -> list[str]:
        """Drop every loaded version not in ``version_ids``; returns the ids dropped."""
        keep = set(version_ids)
        with self._lock:
            gone = [v for v in self._engines if v not in keep]
            for version in gone:
                self._drop(version)
        for version in gone:
            logger.info("dropped model version %s (no longer live)", version)
        return gone

    # ------------------------------------------------------------------ bounds

    def _drop(self, version: str) -> None:
        entry = self._engines.pop(version)
        self._close_later(entry)

    def _close_later(self, entry: _Entry) -> None:
        if entry.leases:
            self._retiring.append(entry)
        elif not entry.shared:
            entry.engine.close()

    def _make_room(self, size: int, count: int, *, evict_live: bool = True) -> bool:
        """Evict idle engines, least recently used non-live first, until ``count`` more engines
        of ``size`` bytes fit. Leased engines are never evicted."""
        budget = self.memory_budget_bytes

        def fits() -> bool:
            if len(self._engines) + count > self.max_engines:
                return False
            return not budget or self._held() + size <= budget

        order = sorted(
            (
                v
                for v, e in self._engines.items()
                if not e.leases and (evict_live or v not in self._live)
            ),
            key=lambda v: (v in self._live, self._engines[v].used_at),
        )
        for version in order:
            if fits():
                break
            logger.info("evicting model version %s", version)
            self._drop(version)
        return fits()

    def _held(self) -> int:
        return sum(e.size for e in self._engines.values()) + sum(e.size for e in self._retiring)

    def held_bytes(self) -> int:
        """Estimated memory of every engine this cache holds, including dropped ones still
        leased by a request."""
        with self._lock:
            return self._held()

    def loaded(self) -> list[str]:
        with self._lock:
            return list(self._engines)

    def snapshot(self) -> dict[str, int]:
        """{version id: estimated bytes} of the loaded engines."""
        with self._lock:
            return {v: e.size for v, e in self._engines.items()}
