"""Attack suite for watermark robustness benchmarks.

Every attack is ``fn(src: Path, dst: Path) -> None`` over WAV files; the output is a
16-bit WAV at the *input* sample rate (except where the attack itself changes the
length).  Codec attacks round-trip through ffmpeg, resampling/tempo/speed/filters use
sox, noise/volume/crop use numpy.  Names in ``ATTACKS`` are stable: bench JSON keys
depend on them.
"""

from __future__ import annotations

import subprocess
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf


def _run(cmd: list[str]) -> None:
    subprocess.run(cmd, check=True, capture_output=True)


def _sr(path: Path) -> int:
    return sf.info(str(path)).samplerate


def _codec(ext: str, args: list[str]) -> Callable[[Path, Path], None]:
    def attack(src: Path, dst: Path) -> None:
        sr = _sr(src)
        with tempfile.TemporaryDirectory() as td:
            enc = Path(td) / f"enc.{ext}"
            _run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(src), *args, str(enc)])
            _run(
                [
                    "ffmpeg",
                    "-nostdin",
                    "-v",
                    "error",
                    "-y",
                    "-i",
                    str(enc),
                    "-ac",
                    "1",
                    "-ar",
                    str(sr),
                    "-c:a",
                    "pcm_s16le",
                    str(dst),
                ]
            )

    return attack


def _sox(*effect: str) -> Callable[[Path, Path], None]:
    def attack(src: Path, dst: Path) -> None:
        _run(["sox", "-V1", str(src), "-b", "16", str(dst), *effect])

    return attack


def _resample_via(rate: int) -> Callable[[Path, Path], None]:
    def attack(src: Path, dst: Path) -> None:
        sr = _sr(src)
        with tempfile.TemporaryDirectory() as td:
            mid = Path(td) / "mid.wav"
            _run(["sox", "-V1", str(src), "-b", "16", str(mid), "rate", "-v", str(rate)])
            _run(["sox", "-V1", str(mid), "-b", "16", str(dst), "rate", "-v", str(sr)])

    return attack


def _telephone(src: Path, dst: Path) -> None:
    """A narrowband phone line (G.712 band 300-3400 Hz, 8 kHz G.711 mu-law), at the input rate."""
    sr = _sr(src)
    with tempfile.TemporaryDirectory() as td:
        mid = Path(td) / "mid.wav"
        _run(["sox", "-V1", str(src), "-r", "8000", "-e", "u-law", "-b", "8", str(mid),
              "sinc", "300-3400", "rate", "-v", "8000"])  # fmt: skip
        _run(["sox", "-V1", str(mid), "-b", "16", str(dst), "rate", "-v", str(sr)])


def _numpy(
    fn: Callable[[np.ndarray, int, np.random.Generator], np.ndarray],
) -> Callable[[Path, Path], None]:
    def attack(src: Path, dst: Path) -> None:
        x, sr = sf.read(str(src), dtype="float32", always_2d=False)
        if x.ndim > 1:
            x = x.mean(axis=1)
        rng = np.random.default_rng(zlib.crc32(src.name.encode()))
        y = np.clip(fn(x, sr, rng), -1.0, 1.0)
        sf.write(str(dst), y, sr, subtype="PCM_16")

    return attack


def _noise(snr_db: float) -> Callable[[Path, Path], None]:
    def fn(x: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
        p = float(np.mean(x.astype(np.float64) ** 2))
        n = rng.standard_normal(len(x)) * np.sqrt(p / 10 ** (snr_db / 10))
        return (x + n).astype(np.float32)

    return _numpy(fn)


def _gain(g: float) -> Callable[[Path, Path], None]:
    return _numpy(lambda x, sr, rng: x * g)  # clipping happens in _numpy


def _crop(seconds: float) -> Callable[[Path, Path], None]:
    return _numpy(lambda x, sr, rng: x[int(seconds * sr) :])


def _none(src: Path, dst: Path) -> None:
    x, sr = sf.read(str(src), dtype="float32")
    sf.write(str(dst), x, sr, subtype="PCM_16")


ATTACKS: dict[str, Callable[[Path, Path], None]] = {
    "none": _none,
    "mp3_128k": _codec("mp3", ["-c:a", "libmp3lame", "-b:a", "128k"]),
    "mp3_64k": _codec("mp3", ["-c:a", "libmp3lame", "-b:a", "64k"]),
    "ogg_q2": _codec("ogg", ["-c:a", "libvorbis", "-q:a", "2"]),
    "opus_32k": _codec("opus", ["-c:a", "libopus", "-b:a", "32k"]),
    "opus_24k": _codec("opus", ["-c:a", "libopus", "-b:a", "24k"]),
    "aac_96k": _codec("m4a", ["-c:a", "aac", "-b:a", "96k"]),
    "resample_16k": _resample_via(16000),
    "telephone_8k": _resample_via(8000),
    "telephone_g711": _telephone,
    "noise_30db": _noise(30.0),
    "noise_20db": _noise(20.0),
    "volume_0.5": _gain(0.5),
    "volume_2_clip": _gain(2.0),
    "crop_start_0.5s": _crop(0.5),
    "crop_start_1.3s": _crop(1.3),
    "tempo_+2": _sox("tempo", "1.02"),
    "tempo_-2": _sox("tempo", "0.98"),
    "speed_+2": _sox("speed", "1.02"),
    "speed_-2": _sox("speed", "0.98"),
    "lowpass_4k": _sox("sinc", "-4000"),
    # The platform's own lossy output settings (speech/audio.py): the mark must survive
    # what Timbre itself delivers.
    "platform_mp3_96k": _codec("mp3", ["-c:a", "libmp3lame", "-b:a", "96k"]),
    "platform_opus_64k": _codec("opus", ["-c:a", "libopus", "-b:a", "64k"]),
    "platform_ogg_q8": _codec("ogg", ["-c:a", "libvorbis", "-q:a", "8"]),
}


# Crops only run on clips that keep at least MIN_LEFT_S after the cut (a 1.5 s clip cropped by
# 1.3 s is not a clip any more): ``applies`` says which (attack, length) cells are measured.
CROP_S = {"crop_start_0.5s": 0.5, "crop_start_1.3s": 1.3}
MIN_LEFT_S = 1.0


def applies(name: str, seconds: float) -> bool:
    return seconds - CROP_S.get(name, 0.0) >= MIN_LEFT_S - 1e-9


def apply(name: str, src: Path, dst: Path) -> None:
    ATTACKS[name](Path(src), Path(dst))
