"""DNSMOS predictions (speechmos models) rank clean speech above noisy speech."""

from __future__ import annotations

import numpy as np
import pytest

from speech import mos
from speech.testing import talents as T

pytestmark = pytest.mark.slow


def test_clean_speech_beats_noisy_speech():
    x = np.asarray(T.stock(T.TRAIN_SENTENCES[3]))
    clean = mos.predict(x, T.SAMPLE_RATE)
    assert set(clean) == {"p808", "sig", "bak", "ovrl"}
    assert 3.3 < clean["p808"] <= 5.0
    noisy = x + np.random.default_rng(0).normal(0, 0.05, len(x)).astype(np.float32)
    assert mos.predict_mos(noisy, T.SAMPLE_RATE) < clean["p808"] - 0.5


def test_short_clip_is_refused():
    with pytest.raises(ValueError):
        mos.predict_mos(np.zeros(1000, dtype=np.float32), 16000)
