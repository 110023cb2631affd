"""A second build of the stock engine: the Piper voice with its weights quantised to int8.

``quantize_piper`` runs onnxruntime's dynamic quantisation (int8 weights, activations quantised
at run time) on a Piper ``.onnx`` model and writes ``<stem>.int8.onnx`` with the voice's
``.onnx.json`` config copied beside it, which is all Piper needs to load it unchanged:
``PiperEngine().load(quantized_spec(path))``. The model is about a third of the size (63 MB ->
~19 MB); its predicted MOS is lower (about 3.7 against 4.1), so it is a candidate for a rollout
to judge, not a drop-in replacement.

Framework-free: no Django, no settings. ``onnx`` and ``onnxruntime`` are imported only when a
model is quantised.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

from speech.engines.artefacts import sha256_file
from speech.engines.base import ModelVersionSpec
from speech.engines.piper_engine import ENGINE_NAME, _voice_version

CONFIG_SUFFIX = ".json"  # Piper reads <model>.onnx.json


def _drop_shape_inference_noise(record: logging.LogRecord) -> bool:
    # onnxruntime.quantization logs one root-logger warning per tensor whose type shape
    # inference cannot settle (hundreds for Piper's flows); they are harmless here.
    return not str(record.msg).startswith("Inference failed or unsupported type to quantize")


def quantized_name(model_path: Path, version_suffix: str = "int8") -> str:
    """``en_US-joe-medium.onnx`` -> ``en_US-joe-medium.int8.onnx``."""
    _check_suffix(version_suffix)
    return f"{Path(model_path).name.removesuffix('.onnx')}.{version_suffix}.onnx"


def quantize_piper(model_path: Path, out_dir: Path, *, version_suffix: str = "int8") -> Path:
    """Quantise a Piper voice to int8 weights; returns the path of the new ``.onnx``.

    The config is copied first and the model renamed into place last, both from temporary
    names in ``out_dir``, so another process never sees half a file and the model's presence
    means its config is there too. An existing build of the same name is replaced.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model_path = Path(model_path)
    config_path = Path(f"{model_path}{CONFIG_SUFFIX}")
    if not model_path.is_file():
        raise FileNotFoundError(f"no model at {model_path}")
    if not config_path.is_file():
        raise FileNotFoundError(f"no Piper config beside the model: {config_path}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / quantized_name(model_path, version_suffix)
    out_config = Path(f"{out}{CONFIG_SUFFIX}")

    tmp_model = _temp_path(out_dir, out.name)
    tmp_config = _temp_path(out_dir, out_config.name)
    try:
        shutil.copyfile(config_path, tmp_config)
        root = logging.getLogger()
        root.addFilter(_drop_shape_inference_noise)
        try:
            quantize_dynamic(str(model_path), str(tmp_model), weight_type=QuantType.QInt8)
        finally:
            root.removeFilter(_drop_shape_inference_noise)
        os.replace(tmp_config, out_config)
        os.replace(tmp_model, out)
    finally:
        tmp_model.unlink(missing_ok=True)
        tmp_config.unlink(missing_ok=True)
    return out


def quantized_spec(path: Path) -> ModelVersionSpec:
    """Spec of a quantised build, e.g. ``piper:joe-medium-int8@<sha256[:12]>``.

    The version is the stock voice's version plus the build suffix from the file name, so the
    spec id never equals the stock one; ``artefact_path`` points at the file so
    ``PiperEngine.load`` uses it (and verifies the checksum) instead of the packaged voice.
    """
    path = Path(path)
    stem = path.name.removesuffix(".onnx")
    base, dot, suffix = stem.rpartition(".")
    if not dot or not base or not suffix:
        raise ValueError(f"{path.name}: not a quantised build name (<stem>.<suffix>.onnx)")
    version = f"{_voice_version(Path(base + '.onnx'))}-{suffix}"
    return ModelVersionSpec(ENGINE_NAME, version, sha256_file(path), str(path))


def _check_suffix(version_suffix: str) -> None:
    if not version_suffix or not version_suffix.replace("-", "").replace("_", "").isalnum():
        raise ValueError(f"version suffix must be a short alphanumeric tag: {version_suffix!r}")


def _temp_path(folder: Path, name: str) -> Path:
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".part")
    os.close(fd)
    return Path(tmp)
