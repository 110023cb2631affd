"""Predicted MOS with Microsoft's DNSMOS models shipped inside the ``speechmos`` wheel.

``predict_mos`` returns the P.808 MOS (1-5); ``predict`` adds DNSMOS P.835's SIG, BAK and OVRL.
It is a predictor, not a listening test: use it to compare versions of the same voice (the
stock Piper voice scores about 4.1). The models see 16 kHz audio in 9 s windows; shorter clips
are looped to 9 s by speechmos itself. Sessions are built once per process, with a thread count
the caller chooses (the first caller's wins).
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path

import numpy as np

from speech import dsp
from speech.onnx_sessions import cpu_session

MOS_SAMPLE_RATE = 16000
MODEL_VERSION = "dnsmos-p808-model_v8+p835-sig_bak_ovr (speechmos 0.0.1.1)"

_model = None
_lock = threading.Lock()


def _models_dir() -> Path:
    spec = importlib.util.find_spec("speechmos")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the speechmos package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "dnsmos_models"


def get_model(threads: int = 1):
    """The process-wide speechmos ``DNSMOS`` with sessions limited to ``threads``."""
    global _model
    with _lock:
        if _model is None:
            from speechmos.dnsmos import DNSMOS

            d = _models_dir()
            model = DNSMOS.__new__(DNSMOS)  # its __init__ gives no way to set threads
            model.primary_model_path = str(d / "sig_bak_ovr.onnx")
            model.onnx_sess = cpu_session(model.primary_model_path, threads)
            model.p808_onnx_sess = cpu_session(d / "model_v8.onnx", threads)
            _model = model
        return _model


def predict(samples: np.ndarray, sr: int, threads: int = 1) -> dict[str, float]:
    """{"p808", "sig", "bak", "ovrl"} for one mono clip."""
    x = dsp.resample(np.asarray(samples, dtype=np.float32).reshape(-1), sr, MOS_SAMPLE_RATE)
    if len(x) < MOS_SAMPLE_RATE // 2:
        raise ValueError("too short for a MOS prediction (need at least 0.5 s)")
    x = np.clip(x, -1.0, 1.0).astype(np.float32)
    out = get_model(threads)(x, MOS_SAMPLE_RATE, False)
    return {
        "p808": float(out["p808_mos"]),
        "sig": float(out["sig_mos"]),
        "bak": float(out["bak_mos"]),
        "ovrl": float(out["ovrl_mos"]),
    }


def predict_mos(samples: np.ndarray, sr: int, threads: int = 1) -> float:
    """Predicted P.808 MOS (1-5)."""
    return predict(samples, sr, threads)["p808"]
