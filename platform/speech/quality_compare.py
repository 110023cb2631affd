"""Score two renders of one text side by side: the candidate version's and the stable's.

Framework-free. Each render gets ASR WER against the text (`speech.asr`), predicted MOS
(DNSMOS P.808, `speech.mos`) and, when a reference speaker embedding is given (a custom
voice's talent), the speaker similarity to it (`speech.speaker`). A score that cannot be
measured for a render (e.g. too short for MOS) is None; the caller decides what that means.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def score(
    text: str,
    samples: np.ndarray,
    sr: int,
    *,
    reference_embedding: Sequence[float] | np.ndarray | None = None,
    asr_threads: int = 0,
    mos_threads: int = 1,
) -> dict[str, float | None]:
    from speech import asr, mos

    hypothesis = asr.transcribe(samples, sr, cpu_threads=asr_threads)
    scores: dict[str, float | None] = {"wer": float(asr.wer(text, hypothesis))}
    try:
        scores["mos"] = float(mos.predict_mos(samples, sr, threads=mos_threads))
    except ValueError:  # too short to predict
        scores["mos"] = None
    if reference_embedding is not None:
        from speech import speaker

        try:
            scores["similarity"] = speaker.cosine(reference_embedding, speaker.embed(samples, sr))
        except ValueError:  # too little speech
            scores["similarity"] = None
    return scores


def compare(
    text: str,
    candidate: np.ndarray,
    stable: np.ndarray,
    sr: int,
    *,
    reference_embedding: Sequence[float] | np.ndarray | None = None,
    asr_threads: int = 0,
    mos_threads: int = 1,
) -> tuple[dict[str, float | None], dict[str, float | None]]:
    """(candidate scores, stable scores) for the same text, on the same scale."""
    options = dict(
        reference_embedding=reference_embedding, asr_threads=asr_threads, mos_threads=mos_threads
    )
    return score(text, candidate, sr, **options), score(text, stable, sr, **options)
