"""The test-only faulty engine: offered only when enabled, and each fault does what it says."""

import numpy as np
import pytest

from speech import quality_compare
from speech.engines.cache import EngineLoadError, create_engine, engine_class, sanity_check
from speech.testing import faulty_engine

TEXTS = [f"Sentence number {i} of the fault check." for i in range(40)]


def test_only_offered_when_enabled(monkeypatch):
    monkeypatch.delenv(faulty_engine.ENABLE_ENV, raising=False)
    with pytest.raises(EngineLoadError):
        engine_class("faulty")
    monkeypatch.setenv(faulty_engine.ENABLE_ENV, "1")
    assert engine_class("faulty") is faulty_engine.FaultyEngine


@pytest.mark.slow
def test_faults(monkeypatch):
    monkeypatch.setenv(faulty_engine.ENABLE_ENV, "1")
    errors = create_engine(faulty_engine.spec("errors-0.6"))
    sanity_check(errors)  # it still loads
    assert errors.spec.id == faulty_engine.spec("errors-0.6").id

    def fails(text: str) -> bool:
        try:
            errors.synthesize(text)
        except faulty_engine.InjectedFault:
            return True
        return False

    outcomes = [fails(t) for t in TEXTS]
    assert 0.4 <= sum(outcomes) / len(outcomes) <= 0.8
    assert outcomes == [fails(t) for t in TEXTS]  # deterministic per text

    healthy = create_engine(faulty_engine.spec("healthy"))
    garbled = create_engine(faulty_engine.spec("garbled"))
    text = "The quick brown fox jumps over the lazy dog."
    good, noise = healthy.synthesize(text), garbled.synthesize(text)
    assert len(noise) == len(good) and np.isfinite(noise).all()
    sr = healthy.sample_rate
    good_scores, noise_scores = quality_compare.compare(text, good, noise, sr)
    assert good_scores["wer"] < 0.3 < noise_scores["wer"]
