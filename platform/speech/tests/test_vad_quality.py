"""silero-vad speech presence and the upload quality checks, on real audio."""

from __future__ import annotations

import numpy as np
import pytest

from speech import quality, vad
from speech.testing import talents as T

SR = T.SAMPLE_RATE


@pytest.fixture(scope="module")
def speech_clip():
    x = np.asarray(T.stock(T.TRAIN_SENTENCES[1]))
    pad = np.zeros(SR, dtype=np.float32)
    return np.concatenate([pad, x, pad]), len(x)


def _noise(n, level, seed=0):
    return np.random.default_rng(seed).normal(0, level, n).astype(np.float32)


def test_vad_finds_speech_in_piper_output(speech_clip):
    x, n = speech_clip
    segs = vad.speech_segments(x, SR)
    assert segs
    assert segs[0].start >= 0.8 and segs[-1].end <= (SR + n) / SR + 0.2
    assert vad.speech_seconds(x, SR) > 0.6 * n / SR
    assert 0.3 < vad.speech_ratio(x, SR) < 0.9


def test_vad_finds_no_speech_in_silence_or_noise():
    assert vad.speech_segments(np.zeros(3 * SR, dtype=np.float32), SR) == []
    assert vad.speech_segments(_noise(3 * SR, 0.1), SR) == []
    assert vad.trim(np.zeros(SR, dtype=np.float32), SR).size == 0


def test_trim_keeps_the_speech_with_a_small_pad(speech_clip):
    x, n = speech_clip
    y = vad.trim(x, SR, pad_ms=100)
    assert n / SR - 0.3 < len(y) / SR < n / SR + 0.5
    assert len(y) < len(x) - SR


def test_clean_speech_passes(speech_clip):
    x, _ = speech_clip
    a = quality.assess(x + _noise(len(x), 1e-4), SR)
    assert a.ok, a.problems
    assert a.snr_db > 25 and a.snr_method == "vad"
    assert a.to_dict()["ok"] is True


def test_clipped_clip_is_flagged(speech_clip):
    x, _ = speech_clip
    a = quality.assess(np.clip(x * 8, -1, 1), SR)
    assert "clipped" in a.codes
    assert a.clip_ratio > 0.01


def test_noisy_clip_is_flagged(speech_clip):
    x, _ = speech_clip
    a = quality.assess(x + _noise(len(x), 0.05), SR)
    assert "too_noisy" in a.codes
    assert a.snr_db < 10
    assert "clipped" not in a.codes


def test_silent_short_and_quiet_clips():
    assert quality.assess(np.zeros(2 * SR, dtype=np.float32), SR).codes == ["silent"]
    assert "too_short" in quality.assess(np.asarray(T.stock("Hi."))[: SR // 2], SR).codes
    assert quality.assess(np.zeros(0, dtype=np.float32), SR).codes == ["empty"]
    x = np.asarray(T.stock(T.TRAIN_SENTENCES[2])) * 0.004
    assert "too_quiet" in quality.assess(x, SR).codes


def test_normalize_loudness_hits_the_target(speech_clip):
    x, _ = speech_clip
    y = quality.normalize_loudness(x * 0.05, SR, target_dbfs=-20.0)
    mask = vad.speech_mask(y, SR)
    assert abs(quality.rms_dbfs(y[mask]) + 20.0) < 1.0
    assert np.max(np.abs(y)) <= 0.97 + 1e-6
