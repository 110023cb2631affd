"""The per-process engine cache: load on first use, sanity check, atomic swap, LRU bound."""

import threading
from dataclasses import replace

import numpy as np
import pytest

from speech.engines.base import SynthesisControls
from speech.engines.cache import EngineCache, EngineLoadError, create_engine
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
