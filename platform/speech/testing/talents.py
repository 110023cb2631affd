"""Synthetic voice talents: distinct speakers who say known sentences.

Two families, as facts.md measured:

- **espeak-ng variants** (``en-us+m3``, ``en-gb+f2``, ...): formant synthesis, clearly different
  timbres, intelligible to whisper;
- **transformed Piper** (the stock joe-medium voice): a formant shift by the resample trick
  (resample by ``a`` moves pitch and formants by ``a`` and the duration by ``1/a``; sox's WSOLA
  ``tempo`` then restores the duration without touching the spectrum), then a TD-PSOLA pitch
  shift (``speech.dsp.psola``, which keeps formants) to set the pitch independently.

``TALENTS`` are the enrolled targets (pairwise resemblyzer cosine of their 5-utterance means
checked in bench/speaker_calibration.py); ``IMPOSTORS`` are other voices, some of them close to
a talent on purpose (another espeak variant of the same accent, Piper with a different shift,
the stock voice itself). ``TRAIN_SENTENCES`` (30) and ``HELD_OUT_SENTENCES`` (8) never overlap;
``CONSENT_SENTENCES`` are consent-statement-like utterances with names, a company and digits.

Everything renders at 22.05 kHz float32 mono (Piper's rate). Rendering is deterministic.
"""

from __future__ import annotations

import io
import math
import shutil
import subprocess
import threading
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import soundfile as sf

from speech import dsp

SAMPLE_RATE = 22050

TRAIN_SENTENCES = (
    "The quarterly report will be ready by the end of the week.",
    "Please hold the line while we connect your call.",
    "Our new store opens on the corner of Fifth and Main.",
    "Thank you for choosing us for your travel plans.",
    "The weather tomorrow looks bright with a light breeze.",
    "Your order has shipped and should arrive on Tuesday.",
    "We value every customer and every piece of feedback.",
    "The meeting has moved to the large room upstairs.",
    "Fresh coffee is brewed every morning at seven.",
    "Remember to save your work before you close the app.",
    "The museum is open daily except on public holidays.",
    "Our support team is available around the clock.",
    "A gentle reminder that your subscription renews soon.",
    "The train to the airport leaves from platform four.",
    "We are proud to sponsor the city marathon this year.",
    "Please keep your ticket until the end of the journey.",
    "The recipe calls for two cups of flour and an egg.",
    "Our latest model is lighter, faster and quieter.",
    "Bright colours and clean lines define the new design.",
    "The library will close early on Friday afternoon.",
    "Every great journey begins with a single step.",
    "Check the settings menu to change your password.",
    "The garden looks wonderful after the summer rain.",
    "You can return any item within thirty days.",
    "Our chef prepares each dish with local ingredients.",
    "The concert starts at eight, so please arrive early.",
    "We will send a confirmation to your email address.",
    "The bridge is closed for repairs until next month.",
    "Safety is our first priority on every flight.",
    "Thank you for listening, and have a lovely day.",
)

HELD_OUT_SENTENCES = (
    "The bakery on the high street sells warm bread at dawn.",
    "Your account balance is shown at the top of the page.",
    "Join us this weekend for music, food and games.",
    "The hotel offers free parking for all its guests.",
    "A short walk leads to a quiet beach by the harbour.",
    "Please speak clearly after the tone and then hang up.",
    "The software update fixes several small problems.",
    "Our team will call you back within one business day.",
)

CONSENT_SENTENCES = (
    "I, Dana Fischer, am aware that recordings of my voice will be used by Acme Limited to "
    "create a synthetic version of my voice. Challenge: maple seven river two.",
    "I, Dana Fischer, agree that Acme Limited may use my recordings to build a synthetic "
    "voice. Challenge: copper four lantern nine.",
    "I, Dana Fischer, confirm my consent to Acme Limited creating a synthetic voice from my "
    "recordings. Challenge: orange three harbour eight.",
)


@dataclass(frozen=True)
class Talent:
    name: str
    kind: str  # "espeak" or "piper"
    voice: str = ""  # espeak-ng voice, e.g. "en-us+m3"
    formant: float = 1.0  # formant (and pitch) factor of the resample trick
    semitones: float = 0.0  # extra PSOLA pitch shift, formants kept
    espeak_speed: int = 160  # words per minute
    espeak_pitch: int = 50  # 0-99


TALENTS = (
    Talent("ava", "espeak", voice="en-us+f2", espeak_pitch=60),
    Talent("ben", "espeak", voice="en-gb+m1", espeak_pitch=40, formant=0.88),
    Talent("cara", "piper", formant=1.16, semitones=4.0),
    Talent("dev", "piper", formant=0.88, semitones=-2.0),
)

IMPOSTORS = (
    Talent("imp-us-m3", "espeak", voice="en-us+m3"),
    Talent("imp-us-f4", "espeak", voice="en-us+f4"),
    Talent("imp-gb-f3", "espeak", voice="en-gb+f3", espeak_pitch=65),
    Talent("imp-us-m7", "espeak", voice="en-us+m7", espeak_pitch=35),
    Talent("imp-sc-m2", "espeak", voice="en-gb-scotland+m2"),
    Talent("imp-piper-stock", "piper"),
    Talent("imp-piper-up", "piper", semitones=6.0),
    Talent("imp-piper-down", "piper", semitones=-5.0),
    Talent("imp-piper-wide", "piper", formant=1.3, semitones=-2.0),
    Talent("imp-gb-m1-up", "espeak", voice="en-gb+m1", formant=1.12),
)

_piper = None
_piper_lock = threading.Lock()


def piper_engine():
    """A deterministic stock Piper engine, shared by the renderers (noise_scale = 0)."""
    global _piper
    with _piper_lock:
        if _piper is None:
            from speech.engines.piper_engine import PiperEngine

            eng = PiperEngine(deterministic=True)
            eng.load()
            _piper = eng
        return _piper


def stock(text: str, length_scale: float | None = None) -> np.ndarray:
    """The stock Piper voice at 22.05 kHz."""
    return _stock_cached(text)


@lru_cache(maxsize=512)
def _stock_cached(text: str) -> np.ndarray:
    eng = piper_engine()
    with _piper_lock:
        x = eng.synthesize(text)
    x = dsp.resample(x, eng.sample_rate, SAMPLE_RATE)
    x.setflags(write=False)
    return x


def espeak(text: str, voice: str, speed: int = 160, pitch: int = 50) -> np.ndarray:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("espeak-ng is not installed (make system-deps)")
    wav = subprocess.run(
        [exe, "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout", text],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    x, sr = sf.read(io.BytesIO(wav), dtype="float32", always_2d=True)
    x = dsp.resample(x.mean(axis=1), sr, SAMPLE_RATE)
    return dsp.apply_gain(x, SAMPLE_RATE, dsp.db_to_gain(-20.0) / max(dsp.rms(x), 1e-6))


def sox_tempo(x: np.ndarray, sr: int, factor: float) -> np.ndarray:
    """sox WSOLA ``tempo``: duration / ``factor``, pitch and spectrum kept."""
    exe = shutil.which("sox")
    if exe is None:
        raise RuntimeError("sox is not installed (make system-deps)")
    pcm = np.clip(x, -1, 1).astype(np.float32).tobytes()
    fmt = ["-t", "raw", "-e", "floating-point", "-b", "32", "-c", "1", "-r", str(sr)]
    out = subprocess.run(
        [exe, *fmt, "-", *fmt, "-", "tempo", "-s", f"{factor:.6f}"],
        input=pcm,
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    return np.frombuffer(out, dtype=np.float32).copy()


def shift_voice(x: np.ndarray, sr: int, formant: float, semitones: float) -> np.ndarray:
    """Formant shift by ``formant`` (resample trick + sox tempo), then PSOLA pitch shift."""
    y = np.asarray(x, dtype=np.float32)
    if formant != 1.0:
        # Resample to sr/formant and play at sr: every frequency x formant, duration / formant.
        y = dsp.resample(y, sr, int(round(sr / formant)))
        y = sox_tempo(y, sr, 1.0 / formant)
    if semitones:
        y = dsp.psola(y, sr, semitones=semitones)
    return y


def render(talent: Talent, text: str) -> np.ndarray:
    """The talent saying ``text``: float32 mono at ``SAMPLE_RATE`` (cached, read-only)."""
    return _render_cached(talent, text)


@lru_cache(maxsize=2048)
def _render_cached(talent: Talent, text: str) -> np.ndarray:
    if talent.kind == "espeak":
        x = espeak(text, talent.voice, talent.espeak_speed, talent.espeak_pitch)
        if talent.formant != 1.0 or talent.semitones:
            x = shift_voice(x, SAMPLE_RATE, talent.formant, talent.semitones)
            x = dsp.apply_gain(x, SAMPLE_RATE, dsp.db_to_gain(-20.0) / max(dsp.rms(x), 1e-6))
    elif talent.kind == "piper":
        x = shift_voice(stock(text), SAMPLE_RATE, talent.formant, talent.semitones)
        x = dsp.apply_gain(x, SAMPLE_RATE, dsp.db_to_gain(-20.0) / max(dsp.rms(x), 1e-6))
    else:
        raise ValueError(f"unknown talent kind {talent.kind!r}")
    x = np.ascontiguousarray(x, dtype=np.float32)
    x.setflags(write=False)
    return x


def by_name(name: str) -> Talent:
    for t in (*TALENTS, *IMPOSTORS):
        if t.name == name:
            return t
    raise KeyError(name)


def semitones_of(factor: float) -> float:
    return 12.0 * math.log2(factor)
