"""The per-process engine cache: load on first use, sanity check, atomic swap, LRU bound,
the memory budget, eviction order and leases (hot swap)."""

import threading
from dataclasses import replace

import numpy as np
import pytest

from speech.engines.base import (
    Engine,
    EngineCapabilities,
    ModelVersionSpec,
    SynthesisControls,
)
from speech.engines.cache import (
    EngineBudgetExceeded,
    EngineCache,
    EngineLoadError,
    create_engine,
)
from speech.engines.piper_engine import default_spec


@pytest.fixture(scope="module")
def spec():
    return default_spec()


def test_loaded_once_and_shared_per_version(spec):
    cache = EngineCache(max_engines=2)
    first = cache.get(spec)
    assert cache.get(spec) is first and cache.loaded() == [spec.id]


def test_swap_serves_in_flight_requests_on_the_old_engine(spec):
    cache = EngineCache(max_engines=2)
    old = cache.get(spec)
    results = {}

    def long_request():
        results["audio"] = old.synthesize(
            "A request that was already running. " * 4, SynthesisControls()
        )

    thread = threading.Thread(target=long_request)
    thread.start()
    fresh = cache.swap(spec)  # loads beside, sanity-checks, then switches
    thread.join()
    assert fresh is not old and cache.get(spec) is fresh
    assert results["audio"].size > 0 and np.isfinite(results["audio"]).all()


def test_lru_bound_and_checksum_guard(spec):
    cache = EngineCache(max_engines=1)
    cache.get(spec)
    other = replace(spec, version="joe-medium-copy")
    cache.get(other)  # same artefact under another version id
    assert cache.loaded() == [other.id]
    with pytest.raises(Exception):  # noqa: B017 - a wrong checksum must never load
        create_engine(replace(spec, artefact_checksum="0" * 64))
    with pytest.raises(EngineLoadError):
        create_engine(replace(spec, engine="nonexistent"))


# --- Hot swap: live set, memory budget, leases ---------------------------------------------
MB = 1 << 20


class ToneEngine(Engine):
    """A tiny engine whose artefact is a sparse file of a chosen size: the cache's policy is
    under test here, not a model (the tests above use the real Piper voice)."""

    name = "tone"

    def __init__(self):
        self._spec = None
        self.closed = False

    def load(self, spec=None):
        self._spec = spec
        return spec

    @property
    def spec(self):
        return self._spec

    @property
    def sample_rate(self):
        return 16000

    @property
    def capabilities(self):
        return EngineCapabilities(16000, ("neutral",), frozenset(), False, False)

    def synthesize(self, text_chunk, controls=None):
        if self.closed:
            raise RuntimeError("synthesize on a closed engine")
        t = np.arange(int(0.05 * len(text_chunk) * 16000)) / 16000
        return (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)

    def close(self):
        self.closed = True


@pytest.fixture
def tone(tmp_path):
    """tone(version, mb) -> a spec whose artefact is an ``mb`` MB file (estimated 1.75x)."""

    def make(version: str, mb: int = 10) -> ModelVersionSpec:
        path = tmp_path / f"{version}.bin"
        with open(path, "wb") as f:
            f.truncate(mb * MB)
        return ModelVersionSpec("tone", version, version * 8, str(path))

    return make


def tone_cache(**kwargs) -> EngineCache:
    def factory(spec):
        engine = ToneEngine()
        engine.load(spec)
        return engine

    return EngineCache(factory=factory, **kwargs)


def test_the_memory_budget_is_never_exceeded(tone):
    cache = tone_cache(max_engines=10, memory_budget_bytes=40 * MB)  # two 17.5 MB engines
    for version in "abcd":
        cache.get(tone(version))
        assert cache.held_bytes() <= 40 * MB
    assert cache.loaded() == [tone("c").id, tone("d").id]
    with pytest.raises(EngineBudgetExceeded):
        cache.get(tone("huge", mb=30))  # 52 MB can never fit
    assert cache.held_bytes() <= 40 * MB


def test_non_live_engines_are_evicted_first_then_least_recently_used(tone):
    cache = tone_cache(max_engines=3)
    a, b, c = tone("a"), tone("b"), tone("c")
    for spec in (a, b, c):
        cache.get(spec)
    cache.set_live([a.id, c.id])
    cache.get(a)  # recently used, and live
    cache.get(tone("d"))
    assert cache.loaded() == [c.id, a.id, tone("d").id]  # b (not live) went first
    cache.get(tone("e"))
    assert tone("d").id not in cache.loaded()  # d is not live either
    cache.set_live([])
    cache.get(tone("f"))
    assert cache.loaded() == [a.id, tone("e").id, tone("f").id]  # then plain LRU


def test_a_leased_engine_survives_eviction_and_is_closed_after_release(tone):
    cache = tone_cache(max_engines=1)
    lease = cache.lease(tone("a"))
    with lease as engine:
        assert cache.retain([]) == [tone("a").id]  # no longer live: dropped from the cache
        cache.get(tone("b"))
        assert not engine.closed and engine.synthesize("still serving").size > 0
        assert cache.held_bytes() == 2 * int(10 * MB * 1.75)  # the retiring one still counts
    assert engine.closed and cache.loaded() == [tone("b").id]
    assert cache.held_bytes() == int(10 * MB * 1.75)
    lease.release()  # idempotent


def test_a_leased_engine_is_never_evicted_to_make_room(tone):
    cache = tone_cache(max_engines=1)
    with cache.lease(tone("a")):
        with pytest.raises(EngineBudgetExceeded):
            cache.get(tone("b"))
        assert cache.loaded() == [tone("a").id]
    cache.get(tone("b"))
    assert cache.loaded() == [tone("b").id]


def test_preload_loads_live_versions_and_retain_drops_the_rest(tone):
    cache = tone_cache(max_engines=4, memory_budget_bytes=40 * MB)
    cache.get(tone("old"))
    live = [tone("a"), tone("b"), tone("c")]
    cache.set_live([s.id for s in live])
    # The idle non-live engine makes room; live ones are never evicted for a preload.
    assert cache.preload(live) == [tone("a").id, tone("b").id]
    assert cache.loaded() == [tone("a").id, tone("b").id]
    assert cache.preload(live) == []  # loaded, or known not to fit: nothing to do
    assert cache.retain([tone("b").id]) == [tone("a").id]
    assert cache.loaded() == [tone("b").id]


def test_real_engine_leased_through_a_swap_finishes_on_it_and_is_then_closed(spec):
    cache = EngineCache(max_engines=2)
    with cache.lease(spec) as old:
        fresh = cache.swap(spec)
        assert fresh is not old and cache.get(spec) is fresh
        audio = old.synthesize("Finishing on the engine it started with.", SynthesisControls())
        assert audio.size > 0 and np.isfinite(audio).all()
        assert cache.held_bytes() > 2 * 60 * MB  # both count until the request is done
    assert old._voice is None  # closed once released: its memory goes now
