"""Measure one loaded engine on a fixed sentence set: the model registry's validation.

For each sentence: a sanity check of the audio (non-empty, finite, not silent), the real-time
factor (synthesis wall time / audio duration), ASR WER (faster-whisper, `speech.asr`), the
DNSMOS P.808 predicted MOS (`speech.mos`) and, given the talent's reference embedding, the
speaker similarity (`speech.speaker`), as the fine-tune's held-out evaluation measures them.
The set is small (four short sentences) so a validation takes seconds on a CPU worker, and the
same for every version, so versions are compared on equal terms.

Framework-free: the Celery task feeds it an engine from the worker's cache.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence

import numpy as np

from speech.engines.base import Engine, SynthesisControls

# Short, phonetically varied, and free of numbers and names the recogniser may spell differently.
VALIDATION_SENTENCES: tuple[str, ...] = (
    "The weather will be bright and clear tomorrow morning.",
    "Please leave your message after the tone.",
    "She carried the heavy basket across the river.",
    "Our new library opens its doors next week.",
)


class SanityError(RuntimeError):
    """The engine produced unusable audio."""


def _check_audio(audio: np.ndarray, sr: int, text: str) -> None:
    if audio.size < sr * 0.2 or not np.isfinite(audio).all():
        raise SanityError(f"unusable audio for {text!r}")
    if float(np.sqrt(np.mean(audio.astype(np.float64) ** 2))) < 1e-4:
        raise SanityError(f"silence for {text!r}")


def evaluate_engine(
    engine: Engine,
    sentences: Sequence[str] = VALIDATION_SENTENCES,
    reference_embedding: np.ndarray | None = None,
    *,
    asr_threads: int = 0,
    mos_threads: int = 1,
) -> dict:
    """Metrics of ``engine`` on ``sentences``; raises `SanityError` on unusable audio.

    Returns plain floats and strings: rtf (pooled: total wall time / total audio), rtf_max,
    wer (word-weighted over all sentences), mos (mean), mos_min, and speaker_similarity (mean,
    only with a reference embedding)."""
    from speech import asr, mos

    if not sentences:
        raise ValueError("evaluate_engine needs at least one sentence")
    sr = engine.sample_rate
    rtfs, moses, sims = [], [], []
    errors, words, seconds, wall = 0.0, 0, 0.0, 0.0
    for text in sentences:
        t0 = time.perf_counter()
        audio = engine.synthesize(text, SynthesisControls())
        took = time.perf_counter() - t0
        _check_audio(audio, sr, text)
        duration = len(audio) / sr
        seconds += duration
        wall += took
        rtfs.append(took / duration)
        moses.append(mos.predict_mos(audio, sr, threads=mos_threads))
        n = max(1, len(asr.normalize_for_wer(text)))
        errors += asr.wer(text, asr.transcribe(audio, sr, cpu_threads=asr_threads)) * n
        words += n
        if reference_embedding is not None:
            from speech import speaker

            sims.append(speaker.cosine(reference_embedding, speaker.embed(audio, sr)))
    out = {
        "sentences": len(sentences),
        "audio_seconds": round(seconds, 2),
        "rtf": round(wall / seconds, 4),
        "rtf_max": round(max(rtfs), 4),
        "wer": round(errors / words, 4),
        "mos": round(statistics.fmean(moses), 4),
        "mos_min": round(min(moses), 4),
        "mos_model": mos.MODEL_VERSION,
        "asr_model": asr.model_version(),
    }
    if sims:
        from speech import speaker

        out["speaker_similarity"] = round(statistics.fmean(sims), 4)
        out["speaker_model"] = speaker.MODEL_VERSION
    return out


def check(metrics: dict, thresholds: dict) -> list[dict]:
    """[{"metric", "value", "threshold", "message"}] for every threshold the metrics miss.

    ``thresholds``: max_wer, min_mos, max_rtf, and min_similarity (None: not checked; given, a
    version without a measured similarity fails, since its likeness is unchecked)."""
    reasons = []

    def fail(metric, value, threshold, message):
        reasons.append(
            {"metric": metric, "value": value, "threshold": threshold, "message": message}
        )

    if metrics["wer"] > thresholds["max_wer"]:
        fail("wer", metrics["wer"], thresholds["max_wer"], "ASR word error rate too high")
    if metrics["mos"] < thresholds["min_mos"]:
        fail("mos", metrics["mos"], thresholds["min_mos"], "predicted MOS too low")
    if metrics["rtf"] > thresholds["max_rtf"]:
        fail("rtf", metrics["rtf"], thresholds["max_rtf"], "slower than the real-time limit")
    if thresholds.get("min_similarity") is not None:
        sim = metrics.get("speaker_similarity")
        if sim is None:
            fail("speaker_similarity", None, thresholds["min_similarity"],
                 "no reference of the talent: similarity unchecked")  # fmt: skip
        elif sim < thresholds["min_similarity"]:
            fail("speaker_similarity", sim, thresholds["min_similarity"],
                 "does not sound like the talent")  # fmt: skip
    return reasons
