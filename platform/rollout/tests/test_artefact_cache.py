"""Registered model versions whose artefact lives in object storage (the real S3 test server)
load through the worker's engine cache: fetched once into MODEL_CACHE_DIR/<sha256>/, verified
against the registered checksum, reused afterwards."""

from __future__ import annotations

import pytest

from rollout import engines
from rollout import services as rollout
from speech.engines.artefacts import ArtefactError
from speech.engines.base import ModelVersionSpec, SynthesisControls
from speech.engines.piper_engine import default_voice_paths


@pytest.fixture
def model_cache(tmp_path, settings):
    settings.MODEL_CACHE_DIR = tmp_path / "model-cache"
    engines.engine_cache.cache_clear()
    yield settings.MODEL_CACHE_DIR
    engines.engine_cache.cache_clear()


def upload_voice(storage, key: str, corrupt: bool = False) -> None:
    model, config = default_voice_paths()
    data = bytearray(model.read_bytes())
    if corrupt:
        data[len(data) // 2] ^= 0xFF
    storage.put(key, bytes(data))
    storage.put(f"{key}.json", config.read_bytes())


def register(version: str, key: str):
    spec = ModelVersionSpec("piper", version, rollout.stock_spec().artefact_checksum)
    return rollout.register(spec, artefact_key=key)


@pytest.mark.django_db
def test_a_stored_model_version_is_fetched_verified_and_reused(s3_storage, model_cache):
    key = "models/piper/joe-copy.onnx"
    upload_voice(s3_storage, key)
    version = register("joe-copy", key)

    engine = engines.engine_cache().get(rollout.spec_for(version))
    local = model_cache / version.artefact_checksum / "joe-copy.onnx"
    assert engine.spec.id == version.id and engine.spec.artefact_path == str(local)
    assert local.with_name("joe-copy.onnx.json").is_file()
    assert engine.synthesize("Hello there.", SynthesisControls()).size > 0

    # The next load (a hot swap) uses the local copy: the object is no longer needed.
    s3_storage.delete(key)
    s3_storage.delete(f"{key}.json")
    fresh = engines.engine_cache().swap(rollout.spec_for(version))
    assert fresh is not engine and fresh.spec.artefact_path == str(local)


@pytest.mark.django_db
def test_a_corrupted_stored_artefact_is_refused_and_deleted(s3_storage, model_cache):
    key = "models/piper/joe-corrupt.onnx"
    upload_voice(s3_storage, key, corrupt=True)
    version = register("joe-corrupt", key)

    with pytest.raises(ArtefactError, match="checksum mismatch"):
        engines.engine_cache().get(rollout.spec_for(version))
    folder = model_cache / version.artefact_checksum
    assert not (folder / "joe-corrupt.onnx").exists()
    assert not [p for p in folder.iterdir() if p.name.endswith(".part")]
    assert version.id not in engines.engine_cache().loaded()


@pytest.mark.django_db
def test_the_packaged_stock_model_stays_local(model_cache):
    stock = rollout.register(rollout.stock_spec())
    engine = engines.engine_cache().get(rollout.spec_for(stock))
    assert engine.spec.id == stock.id and not model_cache.exists()
