"""The artefact cache with a real fetch from a local folder (the apps fetch from S3)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from speech.engines.artefacts import ArtefactCache, ArtefactError
from speech.engines.base import ModelVersionSpec
from speech.engines.cache import EngineCache
from speech.engines.piper_engine import default_spec, default_voice_paths


class FolderStore:
    """Objects are files under `root`; records every key fetched."""

    def __init__(self, root: Path):
        self.root, self.fetched = root, []

    def put(self, key: str, data: bytes) -> None:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def fetch(self, key: str, dest: Path) -> None:
        self.fetched.append(key)
        dest.write_bytes((self.root / key).read_bytes())


def remote_spec(data: bytes, key: str = "models/piper/voice.onnx") -> ModelVersionSpec:
    return ModelVersionSpec("piper", "remote", hashlib.sha256(data).hexdigest(), artefact_key=key)


def test_fetches_verifies_and_reuses(tmp_path):
    store = FolderStore(tmp_path / "store")
    store.put("models/piper/voice.onnx", b"weights")
    store.put("models/piper/voice.onnx.json", b"{}")
    cache = ArtefactCache(tmp_path / "cache", store.fetch)
    spec = remote_spec(b"weights")

    local = cache.resolve(spec, companions=(".json",))
    path = Path(local.artefact_path)
    assert path == tmp_path / "cache" / spec.artefact_checksum / "voice.onnx"
    assert path.read_bytes() == b"weights" and Path(f"{path}.json").read_bytes() == b"{}"
    assert local == spec  # same identity, only the locator changed

    assert cache.resolve(spec, companions=(".json",)).artefact_path == str(path)
    assert store.fetched == ["models/piper/voice.onnx.json", "models/piper/voice.onnx"]
    assert sorted(p.name for p in path.parent.iterdir()) == ["voice.onnx", "voice.onnx.json"]


def test_checksum_mismatch_is_refused_and_nothing_is_kept(tmp_path):
    store = FolderStore(tmp_path / "store")
    store.put("models/piper/voice.onnx", b"tampered")
    cache = ArtefactCache(tmp_path / "cache", store.fetch)
    spec = remote_spec(b"weights")
    with pytest.raises(ArtefactError, match="checksum mismatch"):
        cache.resolve(spec)
    assert list((tmp_path / "cache" / spec.artefact_checksum).iterdir()) == []


def test_a_failed_download_leaves_no_partial_file(tmp_path):
    def broken_fetch(key: str, dest: Path) -> None:
        dest.write_bytes(b"half of it")
        raise ConnectionError("connection reset")

    cache = ArtefactCache(tmp_path / "cache", broken_fetch)
    spec = remote_spec(b"weights")
    with pytest.raises(ArtefactError, match="connection reset"):
        cache.resolve(spec)
    assert list((tmp_path / "cache" / spec.artefact_checksum).iterdir()) == []


@pytest.mark.parametrize(
    ("key", "checksum"), [("models/", "0" * 64), ("models/..", "0" * 64), ("m.onnx", "abc")]
)
def test_unusable_keys_and_checksums_are_refused(tmp_path, key, checksum):
    cache = ArtefactCache(tmp_path, FolderStore(tmp_path).fetch)
    with pytest.raises(ArtefactError):
        cache.resolve(ModelVersionSpec("piper", "v", checksum, artefact_key=key))


def test_local_specs_are_left_alone(tmp_path):
    cache = ArtefactCache(tmp_path / "cache", FolderStore(tmp_path).fetch)
    spec = default_spec()  # the packaged voice: a local file, no storage key
    assert cache.resolve(spec) is spec
    assert not (tmp_path / "cache").exists()


def test_engine_cache_loads_a_remote_voice_through_the_artefact_cache(tmp_path):
    model, config = default_voice_paths()
    store = FolderStore(tmp_path / "store")
    store.put("voices/joe.onnx", model.read_bytes())
    store.put("voices/joe.onnx.json", config.read_bytes())
    spec = ModelVersionSpec(
        "piper", "joe-remote", default_spec().artefact_checksum, artefact_key="voices/joe.onnx"
    )
    engines = EngineCache(max_engines=1, artefacts=ArtefactCache(tmp_path / "cache", store.fetch))
    engine = engines.get(spec)
    assert engine.spec.id == spec.id
    assert Path(engine.spec.artefact_path).parent == tmp_path / "cache" / spec.artefact_checksum
    with pytest.raises(Exception, match="no artefact cache"):
        EngineCache(max_engines=1).get(spec)
