"""The voice-adaptation model on a synthetic talent: a tiny real training run, no mocks."""

from __future__ import annotations

import numpy as np
import pytest

from speech import speaker
from speech import voice_model as vm
from speech.testing import talents as T

pytestmark = pytest.mark.slow

SR = T.SAMPLE_RATE
TALENT = T.by_name("dev")


@pytest.fixture(scope="module")
def trained():
    pairs = [vm.Pair(T.stock(s), T.render(TALENT, s), SR) for s in T.TRAIN_SENTENCES[:4]]
    seen = []
    model = vm.train(
        pairs,
        config=vm.AdapterConfig(steps=60, realign_every=30),
        device="cpu",
        progress_callback=lambda step, total, loss: seen.append((step, total, loss)),
    )
    return model, seen


def test_loss_falls_and_progress_is_reported(trained):
    model, seen = trained
    assert seen[-1][0] == seen[-1][1] == 60
    assert [s for s, _, _ in seen] == sorted(s for s, _, _ in seen)
    assert model.stats["loss_last"] < 0.6 * model.stats["loss_first"]
    assert model.stats["train_frames"] > 500


def test_converted_speech_is_closer_to_the_talent_than_stock(trained):
    model, _ = trained
    enrol = speaker.mean_embedding(
        [speaker.embed(T.render(TALENT, s), SR) for s in T.TRAIN_SENTENCES[:3]]
    )
    text = T.HELD_OUT_SENTENCES[0]
    base = np.asarray(T.stock(text))
    conv = model.convert(base, SR)
    assert conv.dtype == np.float32 and abs(len(conv) - len(base)) < SR // 10
    assert np.isfinite(conv).all() and np.max(np.abs(conv)) <= 1.0
    own = vm.extract(T.render(TALENT, text), SR).mcep
    assert vm.mcd(vm.extract(conv, SR).mcep, own) < vm.mcd(vm.extract(base, SR).mcep, own)
    stock_sim = speaker.cosine(enrol, speaker.embed(base, SR))
    conv_sim = speaker.cosine(enrol, speaker.embed(conv, SR))
    assert conv_sim > stock_sim + 0.05


def test_save_load_round_trip_gives_identical_output(trained, tmp_path):
    model, _ = trained
    path = tmp_path / "voice.pt"
    model.save(path)
    again = vm.VoiceModel.load(path, device="cpu")
    assert again.config == model.config and again.stats == model.stats
    x = np.asarray(T.stock(T.HELD_OUT_SENTENCES[1]))
    for method in ("filter", "world"):
        assert np.array_equal(model.convert(x, SR, method), again.convert(x, SR, method))


def test_load_refuses_other_files(tmp_path):
    import torch

    path = tmp_path / "other.pt"
    torch.save({"format": "something-else"}, path)
    with pytest.raises(ValueError):
        vm.VoiceModel.load(path)


def test_training_is_deterministic_with_a_seed():
    pairs = [vm.Pair(T.stock(s), T.render(TALENT, s), SR) for s in T.TRAIN_SENTENCES[:2]]
    cfg = vm.AdapterConfig(steps=20, realign_every=0, seed=3)
    a = vm.train(pairs, config=cfg, device="cpu")
    b = vm.train(pairs, config=cfg, device="cpu")
    for k in a.state:
        assert np.array_equal(a.state[k].numpy(), b.state[k].numpy())


def test_train_needs_pairs():
    with pytest.raises(ValueError):
        vm.train([], device="cpu")
