"""Edge codecs: encode synthesized audio, decode untrusted uploads.

Encoding: wav/flac via soundfile (in memory); ogg (Vorbis), mp3 and opus via an
ffmpeg subprocess over stdin/stdout pipes (no temp files).

Opus only runs at 8/12/16/24/48 kHz, so an opus request for 22050 or 44100 Hz
is resampled up to the next supported rate (24000 / 48000) before encoding;
``effective_sample_rate()`` tells callers what the stream really carries. Note
that most decoders (ffmpeg, libsndfile) always *output* opus at 48 kHz.

Streaming (``StreamEncoder``): pcm and wav are produced in-process chunk by
chunk (wav with a "max length" header, as live WAV streams do); mp3, opus, ogg
and flac run ONE ffmpeg process fed incrementally, so there are no per-chunk
encoder gaps (encoding sentences separately would add ~25-50 ms of MP3/Opus
priming silence at every join).

Decoding validates by content only (never by file name/extension): soundfile
first, then ffmpeg as a fallback for containers libsndfile lacks (m4a, webm...).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import struct
import subprocess
import tempfile
import threading
from collections.abc import Callable

import numpy as np
import soundfile as sf

from speech import dsp
from speech.errors import CodedError

FORMATS = ("wav", "flac", "ogg", "mp3", "opus", "pcm")
VALID_SAMPLE_RATES = (8000, 16000, 22050, 24000, 44100, 48000)
OPUS_SAMPLE_RATES = (8000, 12000, 16000, 24000, 48000)
CONTENT_TYPES = {
    "wav": "audio/wav",
    "flac": "audio/flac",
    "ogg": "audio/ogg",
    "mp3": "audio/mpeg",
    "opus": "audio/ogg; codecs=opus",
    "pcm": "audio/pcm",  # raw s16le mono; rate is conveyed out of band (headers/API)
}
FILE_EXTENSIONS = {
    "wav": "wav",
    "flac": "flac",
    "ogg": "ogg",
    "mp3": "mp3",
    "opus": "opus",
    "pcm": "pcm",
}
DEFAULT_MAX_BYTES = 50 * 1024 * 1024
DEFAULT_MAX_DURATION_S = 600.0
FFMPEG_TIMEOUT_S = 120

# Lossy bitrates are chosen so the built-in watermark survives the platform's own encoding
# (measured in docs/watermark.md: mp3 48k, opus 32k at 24 kHz and vorbis q4 erase it).
_MP3_KBPS = {8000: 64, 16000: 64, 22050: 96, 24000: 96, 44100: 128, 48000: 128}
_OPUS_KBPS = {8000: 32, 12000: 48, 16000: 48, 24000: 64, 48000: 64}
VORBIS_QUALITY = 8


class AudioError(CodedError):
    pass


def _ffmpeg() -> str:
    path = shutil.which("ffmpeg")
    if not path:
        raise RuntimeError("ffmpeg is not installed")
    return path


def effective_sample_rate(fmt: str, target_sr: int) -> int:
    """Sample rate actually encoded for ``fmt`` (opus rounds up to a supported rate)."""
    if fmt == "opus":
        return next(r for r in OPUS_SAMPLE_RATES if r >= target_sr)
    return target_sr


def _check_args(fmt: str, target_sr: int) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"unsupported format {fmt!r}; allowed: {', '.join(FORMATS)}")
    if target_sr not in VALID_SAMPLE_RATES:
        raise ValueError(
            f"unsupported sample rate {target_sr}; allowed: "
            f"{', '.join(map(str, VALID_SAMPLE_RATES))}"
        )


def to_int16(samples: np.ndarray) -> np.ndarray:
    x = np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0)
    return np.round(x * 32767.0).astype("<i2")


def _ffmpeg_encode_args(fmt: str, in_sr: int, out_sr: int, streaming: bool) -> list[str]:
    args = [
        _ffmpeg(),
        "-hide_banner",
        "-loglevel",
        "error",
        "-f",
        "s16le",
        "-ar",
        str(in_sr),
        "-ac",
        "1",
    ]
    if streaming:
        # Raw PCM needs no probing; without this ffmpeg reads ~5 s of input (its default
        # analyzeduration) before it encodes anything, which holds a stream's first bytes.
        args += ["-probesize", "32", "-analyzeduration", "0"]
    args += ["-i", "pipe:0", "-ar", str(out_sr)]
    if fmt == "mp3":
        args += ["-c:a", "libmp3lame", "-b:a", f"{_MP3_KBPS[out_sr]}k", "-f", "mp3"]
        if streaming:
            args += ["-write_xing", "0"]  # header would claim a wrong (unknown) length
    elif fmt == "opus":
        args += [
            "-c:a",
            "libopus",
            "-b:a",
            f"{_OPUS_KBPS[out_sr]}k",
            "-application",
            "voip",
            "-f",
            "ogg",
        ]
    elif fmt == "ogg":
        args += ["-c:a", "libvorbis", "-q:a", str(VORBIS_QUALITY), "-f", "ogg"]
    elif fmt == "flac":
        args += ["-c:a", "flac", "-f", "flac"]
    else:
        raise ValueError(f"ffmpeg encoding not used for {fmt!r}")
    if streaming:
        args += ["-flush_packets", "1"]
    return [*args, "pipe:1"]


def encode(samples: np.ndarray, sr: int, fmt: str, target_sr: int | None = None) -> bytes:
    """Encode float32 mono to ``fmt`` at ``target_sr`` (default: ``sr``)."""
    target_sr = target_sr or sr
    _check_args(fmt, target_sr)
    out_sr = effective_sample_rate(fmt, target_sr)
    x = dsp.resample(np.asarray(samples, dtype=np.float32).reshape(-1), sr, out_sr)
    pcm = to_int16(x)
    if fmt == "pcm":
        return pcm.tobytes()
    if fmt in ("wav", "flac"):
        buf = io.BytesIO()
        sf.write(buf, pcm, out_sr, format=fmt.upper(), subtype="PCM_16")
        return buf.getvalue()
    proc = subprocess.run(
        _ffmpeg_encode_args(fmt, out_sr, out_sr, streaming=False),
        input=pcm.tobytes(),
        capture_output=True,
        timeout=FFMPEG_TIMEOUT_S,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg {fmt} encode failed: {proc.stderr.decode()[-500:]}")
    return proc.stdout


def wav_stream_header(sr: int, channels: int = 1, bits: int = 16) -> bytes:
    """RIFF header with max sizes: the total length is unknown while streaming."""
    unknown = 0xFFFFFFFF
    block = channels * bits // 8
    return (
        b"RIFF"
        + struct.pack("<I", unknown)
        + b"WAVE"
        + b"fmt "
        + struct.pack("<IHHIIHH", 16, 1, channels, sr, sr * block, block, bits)
        + b"data"
        + struct.pack("<I", unknown)
    )


class StreamEncoder:
    """Incremental encoder: ``write(chunk)`` returns bytes ready to send, ``close()`` the rest.

    With ``on_bytes``, every encoded byte goes to that callback instead, as soon as it exists:
    ffmpeg encodes in its own process, and its output would otherwise wait for the next
    ``write``. The callback runs on a reader thread for ffmpeg formats; an error it raises
    surfaces at the next ``write`` or ``close``.

    pcm/wav chunks are resampled independently (chunks are sentence audio with
    silent edges, so polyphase edge effects are inaudible); ffmpeg formats are
    resampled inside the single ffmpeg process, which is stateful.
    """

    def __init__(
        self,
        fmt: str,
        sr: int,
        target_sr: int | None = None,
        on_bytes: Callable[[bytes], None] | None = None,
    ):
        self.fmt = fmt
        self.sr = sr
        self.target_sr = target_sr or sr
        _check_args(fmt, self.target_sr)
        self.out_sr = effective_sample_rate(fmt, self.target_sr)
        self.content_type = CONTENT_TYPES[fmt]
        self._header_sent = False
        self._closed = False
        self._proc: subprocess.Popen | None = None
        self._out: list[bytes] = []
        self._err: list[bytes] = []
        self._lock = threading.Lock()
        self._on_bytes = on_bytes
        self._callback_error: BaseException | None = None
        if fmt not in ("pcm", "wav"):
            self._proc = subprocess.Popen(
                _ffmpeg_encode_args(fmt, sr, self.out_sr, streaming=True),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            # drain pipes in threads so a full stdout buffer can never deadlock write()
            self._threads = [
                threading.Thread(
                    target=self._drain, args=(self._proc.stdout, self._deliver), daemon=True
                ),
                threading.Thread(
                    target=self._drain, args=(self._proc.stderr, self._err.append), daemon=True
                ),
            ]
            for t in self._threads:
                t.start()

    def _drain(self, pipe, sink: Callable[[bytes], None]) -> None:
        while True:
            data = os.read(pipe.fileno(), 65536)
            if not data:
                break
            with self._lock:
                sink(data)

    def _deliver(self, data: bytes) -> None:
        if self._on_bytes is None:
            self._out.append(data)
        elif self._callback_error is None:
            try:
                self._on_bytes(data)
            except Exception as exc:  # noqa: BLE001 - re-raised at the next write or close
                self._callback_error = exc

    def _result(self, data: bytes) -> bytes:
        """What write/close return: ``data``, or nothing once it went to ``on_bytes``."""
        if self._callback_error is not None:
            raise self._callback_error
        if self._on_bytes is None or not data:
            return data
        self._on_bytes(data)
        return b""

    def _take(self) -> bytes:
        with self._lock:
            data = b"".join(self._out)
            self._out.clear()
        return data

    def write(self, samples: np.ndarray) -> bytes:
        if self._closed:
            raise RuntimeError("encoder is closed")
        x = np.asarray(samples, dtype=np.float32).reshape(-1)
        if self._proc is None:
            pcm = to_int16(dsp.resample(x, self.sr, self.out_sr)).tobytes()
            if self.fmt == "wav" and not self._header_sent:
                self._header_sent = True
                pcm = wav_stream_header(self.out_sr) + pcm
            return self._result(pcm)
        try:
            self._proc.stdin.write(to_int16(x).tobytes())
            self._proc.stdin.flush()
        except BrokenPipeError:
            raise RuntimeError(f"ffmpeg {self.fmt} stream died: {self._stderr()}") from None
        return self._result(self._take())

    def _stderr(self) -> str:
        with self._lock:
            return b"".join(self._err).decode(errors="replace")[-500:]

    def close(self) -> bytes:
        if self._closed:
            return b""
        self._closed = True
        if self._proc is None:
            if self.fmt == "wav" and not self._header_sent:
                self._header_sent = True
                return self._result(wav_stream_header(self.out_sr))
            return b""
        self._proc.stdin.close()
        rc = self._proc.wait(timeout=FFMPEG_TIMEOUT_S)
        for t in self._threads:
            t.join(timeout=5)
        if rc != 0:
            raise RuntimeError(f"ffmpeg {self.fmt} stream failed: {self._stderr()}")
        return self._result(self._take())

    def abort(self) -> None:
        """Client went away: stop the encoder without waiting for output."""
        self._closed = True
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()


# ------------------------------------------------------------------- decoding

# Container and stream signatures, with the content type each is served as.
_AUDIO_MAGIC = (
    (0, b"RIFF", "audio/wav"),
    (0, b"fLaC", "audio/flac"),
    (0, b"OggS", "audio/ogg"),
    (0, b"ID3", "audio/mpeg"),
    (0, b"FORM", "audio/aiff"),
    (4, b"ftyp", "audio/mp4"),
    (0, b"\x1a\x45\xdf\xa3", "audio/webm"),
    (0, b"#!AMR", "audio/amr"),
    (0, b"caff", "audio/x-caf"),
    (0, b".snd", "audio/basic"),
    (0, b"\x30\x26\xb2\x75", "audio/x-ms-wma"),
)


def sniff_content_type(data: bytes) -> str | None:
    """The content type the bytes start like (by content, not name), or None if no audio."""
    for offset, magic, content_type in _AUDIO_MAGIC:
        if data[offset : offset + len(magic)] == magic:
            return content_type
    # MPEG audio frame sync (11 set bits) at the very start
    if len(data) > 1 and data[0] == 0xFF and (data[1] & 0xE0) == 0xE0:
        return "audio/mpeg"
    return None


def looks_like_audio(data: bytes) -> bool:
    """Whether the bytes start like an audio container or stream we decode: a cheap check
    before storing an upload; decoding may still fail on corrupt data."""
    return sniff_content_type(data) is not None


def _to_mono(x: np.ndarray) -> np.ndarray:
    return x.mean(axis=1) if x.ndim == 2 else x


def _finish(x: np.ndarray, sr: int, max_duration_s: float) -> tuple[np.ndarray, int]:
    x = np.ascontiguousarray(_to_mono(x), dtype=np.float32)
    if len(x) == 0:
        raise AudioError("audio_empty", "the audio contains no samples")
    if len(x) / sr > max_duration_s:
        raise AudioError(
            "audio_too_long", f"audio is {len(x) / sr:.1f} s; the maximum is {max_duration_s:g} s"
        )
    if not np.all(np.isfinite(x)):
        raise AudioError("audio_corrupt", "decoded audio contains non-finite samples")
    return x, sr


def _decode_soundfile(data: bytes, max_duration_s: float) -> tuple[np.ndarray, int] | None:
    try:
        info = sf.info(io.BytesIO(data))
        sr = int(info.samplerate)
        if sr <= 0:
            return None
        # Streamed files (unknown length) report garbage frame counts, so only trust
        # plausible ones for the early reject; the bounded read below is the real limit.
        if 0 < info.frames < 2**40 and info.frames / sr > max_duration_s:
            raise AudioError(
                "audio_too_long",
                f"audio is {info.frames / sr:.1f} s; the maximum is {max_duration_s:g} s",
            )
        limit = int(max_duration_s * sr) + 1
        x, _ = sf.read(io.BytesIO(data), frames=limit, dtype="float32", always_2d=False)
    except AudioError:
        raise
    except (RuntimeError, ValueError, TypeError, EOFError, OSError):
        # libsndfile cannot read it (LibsndfileError is a RuntimeError): try ffmpeg
        return None
    return x, sr


def _decode_ffmpeg(data: bytes, max_duration_s: float) -> tuple[np.ndarray, int]:
    # A real file, not a pipe: mp4/m4a with the index at the end need to seek.
    with tempfile.NamedTemporaryFile(prefix="timbre-decode-") as f:
        f.write(data)
        f.flush()
        probe = subprocess.run(
            ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", f.name],
            capture_output=True,
            timeout=FFMPEG_TIMEOUT_S,
            check=False,
        )
        info = json.loads(probe.stdout or b"{}") if probe.returncode == 0 else {}
        streams = info.get("streams", [])
        audio = [s for s in streams if s.get("codec_type") == "audio"]
        if not audio:
            if streams or info.get("format"):
                raise AudioError("audio_unsupported_format", "the file has no audio stream")
            if looks_like_audio(data):
                raise AudioError("audio_corrupt", "the audio data could not be decoded")
            raise AudioError(
                "audio_unsupported_format", "the data is not in a recognised audio format"
            )
        sr = int(audio[0].get("sample_rate") or 0)
        if sr <= 0:
            raise AudioError("audio_corrupt", "the audio stream has no valid sample rate")
        dur = float(audio[0].get("duration") or info.get("format", {}).get("duration") or 0)
        if dur > max_duration_s:
            raise AudioError(
                "audio_too_long", f"audio is {dur:.1f} s; the maximum is {max_duration_s:g} s"
            )
        # -t bounds the work even when the container lies about its duration
        proc = subprocess.run(
            [
                _ffmpeg(),
                "-v",
                "error",
                "-nostdin",
                "-i",
                f.name,
                "-map",
                "0:a:0",
                "-ac",
                "1",
                "-t",
                f"{max_duration_s + 1:.3f}",
                "-f",
                "f32le",
                "pipe:1",
            ],
            capture_output=True,
            timeout=FFMPEG_TIMEOUT_S,
            check=False,
        )
    if proc.returncode != 0 and not proc.stdout:
        raise AudioError("audio_corrupt", "the audio data could not be decoded")
    return np.frombuffer(proc.stdout, dtype="<f4"), sr


def decode(
    data: bytes,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_duration_s: float = DEFAULT_MAX_DURATION_S,
) -> tuple[np.ndarray, int]:
    """Decode any supported audio to float32 mono at its native rate.

    Raises AudioError: audio_empty, audio_too_long (duration or byte size),
    audio_corrupt, audio_unsupported_format.
    """
    if not data:
        raise AudioError("audio_empty", "no audio data")
    if len(data) > max_bytes:
        raise AudioError(
            "audio_too_long", f"upload is {len(data)} bytes; the maximum is {max_bytes}"
        )
    result = _decode_soundfile(data, max_duration_s)
    if result is None:
        result = _decode_ffmpeg(data, max_duration_s)
    return _finish(result[0], result[1], max_duration_s)
