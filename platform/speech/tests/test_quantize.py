"""The int8 build of the stock Piper voice: smaller, loads through ``PiperEngine.load(spec)``
unchanged, still speaks. Quantising takes a few seconds, so it is done once per module and the
tests are marked ``slow``."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from speech.engines.piper_engine import PiperEngine, default_spec, default_voice_paths
from speech.engines.quantize import quantize_piper, quantized_name, quantized_spec

pytestmark = pytest.mark.slow

SENTENCE = "The bakery on the high street sells warm bread at dawn."


@pytest.fixture(scope="module")
def stock_paths() -> tuple[Path, Path]:
    return default_voice_paths()


@pytest.fixture(scope="module")
def quantized(tmp_path_factory, stock_paths) -> Path:
    return quantize_piper(stock_paths[0], tmp_path_factory.mktemp("int8"))


@pytest.fixture(scope="module")
def engine(quantized):
    eng = PiperEngine(threads=1, deterministic=True)
    eng.load(quantized_spec(quantized))
    yield eng
    eng.close()


def test_writes_int8_model_with_config_and_no_temporaries(quantized, stock_paths):
    model, config = stock_paths
    assert quantized.name == quantized_name(model) == model.name.replace(".onnx", ".int8.onnx")
    copied = Path(f"{quantized}.json")
    assert json.loads(copied.read_text()) == json.loads(config.read_text())
    assert sorted(p.name for p in quantized.parent.iterdir()) == [quantized.name, copied.name]


def test_much_smaller_than_stock(quantized, stock_paths):
    stock_mb = stock_paths[0].stat().st_size / 1e6
    int8_mb = quantized.stat().st_size / 1e6
    assert int8_mb < 0.4 * stock_mb, (stock_mb, int8_mb)  # facts: 63 MB -> ~19 MB


def test_spec_is_a_distinct_version_of_the_piper_engine(quantized):
    spec, stock = quantized_spec(quantized), default_spec()
    assert spec.engine == stock.engine == "piper"
    assert spec.version == f"{stock.version}-int8"
    assert spec.artefact_path == str(quantized)
    assert spec.artefact_checksum != stock.artefact_checksum
    assert spec.id != stock.id and spec != stock


def test_loads_through_the_normal_path_and_speaks(engine, quantized):
    assert engine.spec == quantized_spec(quantized)
    assert engine.spec.artefact_path == str(quantized)
    audio = engine.synthesize(SENTENCE)
    seconds = len(audio) / engine.sample_rate
    assert audio.dtype == np.float32 and np.isfinite(audio).all()
    assert 2.0 < seconds < 6.0, seconds  # 11 words; the stock voice takes ~3 s
    assert 0.05 < float(np.abs(audio).max()) <= 1.0
    assert float(np.sqrt(np.mean(audio**2))) > 0.01  # not silence


def test_wrong_checksum_is_refused(quantized):
    bad = replace(quantized_spec(quantized), artefact_checksum="0" * 64)
    with pytest.raises(ValueError, match="checksum mismatch"):
        PiperEngine().load(bad)


def test_bad_names_are_refused(tmp_path, stock_paths):
    with pytest.raises(ValueError):
        quantized_spec(stock_paths[0])  # the stock file is not a <stem>.<suffix>.onnx build
    with pytest.raises(ValueError):
        quantize_piper(stock_paths[0], tmp_path, version_suffix="in.t8")
    assert list(tmp_path.iterdir()) == []
