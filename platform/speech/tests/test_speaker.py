"""Speaker embeddings with the real resemblyzer encoder on synthetic talents."""

from __future__ import annotations

import numpy as np
import pytest

from speech import speaker
from speech.testing import talents as T

pytestmark = pytest.mark.slow

SR = T.SAMPLE_RATE


def _emb(talent, sentences):
    return [speaker.embed(T.render(talent, s), SR) for s in sentences]


def test_embedding_is_unit_norm_256d_and_deterministic():
    x = T.render(T.TALENTS[0], T.TRAIN_SENTENCES[0])
    a, b = speaker.embed(x, SR), speaker.embed(x, SR)
    assert a.shape == (speaker.EMBEDDING_DIM,) and a.dtype == np.float32
    assert abs(float(np.linalg.norm(a)) - 1.0) < 1e-5
    assert np.allclose(a, b)


def test_encoder_is_a_singleton():
    assert speaker.get_encoder("cpu") is speaker.get_encoder("cpu")


def test_same_speaker_scores_above_different_speaker():
    ava, cara = T.by_name("ava"), T.by_name("cara")
    enrol = speaker.mean_embedding(_emb(ava, T.TRAIN_SENTENCES[:3]))
    same = speaker.cosine(enrol, speaker.embed(T.render(ava, T.CONSENT_SENTENCES[0]), SR))
    other = speaker.cosine(enrol, speaker.embed(T.render(cara, T.CONSENT_SENTENCES[0]), SR))
    assert same > other + 0.15
    # At the calibrated threshold a genuine consent may be rejected (FRR 18 % on this set), an
    # impostor never; the genuine check uses a lower threshold.
    ok, score = speaker.verify(enrol, speaker.embed(T.render(cara, T.CONSENT_SENTENCES[1]), SR))
    assert not ok and score < speaker.VERIFY_THRESHOLD
    ava_consent = speaker.embed(T.render(ava, T.CONSENT_SENTENCES[1]), SR)
    assert speaker.verify(enrol, ava_consent, threshold=0.8)[0]


def test_too_little_audio_is_refused():
    with pytest.raises(ValueError):
        speaker.embed(np.zeros(SR, dtype=np.float32), SR)


def test_mean_embedding_and_cosine():
    a = np.array([1.0, 0.0], dtype=np.float32)
    b = np.array([0.0, 1.0], dtype=np.float32)
    m = speaker.mean_embedding([a, b])
    assert abs(float(np.linalg.norm(m)) - 1.0) < 1e-6
    assert abs(speaker.cosine(a, m) - np.sqrt(0.5)) < 1e-6
    assert speaker.cosine(a, np.zeros(2)) == 0.0
    with pytest.raises(ValueError):
        speaker.mean_embedding([])
