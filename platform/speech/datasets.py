"""Training data uploads: safe zip reading and per-recording checks.

**Archives** (``read_archive``): a zip with ``metadata.csv`` (``file,transcript``; a header row
is optional; LJSpeech-style ``id|transcript[|normalised]`` also works, where ``id`` may omit
``.wav`` and the files may sit in ``wavs/``). ``metadata.csv`` may be at the root or inside one
top-level folder, with the paths relative to it. Everything happens in memory; nothing is
written to disk. The whole archive is refused (``DatasetError``) for:

- ``archive_too_large``: more than ``ZipLimits.max_archive_bytes``;
- ``not_a_zip``: not a readable zip;
- ``too_many_files``: more than ``max_members`` entries (counted from the end-of-central-directory
  record before the directory is parsed, and again after);
- ``unsafe_path``: an absolute path, ``..``, a backslash, a drive letter, a NUL, or a symlink
  entry, anywhere in the archive (listed in the metadata or not); ``duplicate_member``: two
  entries with one name;
- ``zip_bomb``: declared sizes over ``max_total_bytes``, a declared compression ratio over
  ``max_ratio`` (members over 64 KiB), checked before anything is inflated; and, while
  inflating (our own bounded zlib loop, so a lying header cannot bypass it), more bytes than the
  header declared, than ``max_member_bytes`` or than ``max_total_bytes`` in all;
- ``missing_metadata``: no ``metadata.csv``; ``bad_metadata``: not UTF-8, over 5 MiB, a row
  without a transcript column, a file listed twice, or no rows.

Per-file problems do not fail the archive: the item comes back with ``data=b""`` and a
``problem`` (``missing_file``: listed but absent; ``file_too_large``: declared size over
``max_member_bytes``, not inflated; ``corrupt_member``: CRC error, truncated data, encryption
or an unsupported compression method; ``empty_transcript``). Files the metadata does not list
are ignored (never inflated).

**Recordings** (``check_recording``): decoded by content (never by name), then checked in order
of cost, stopping at the first failing stage: size, decode, sample rate, duplicate (SHA-256 of
the bytes, and of the decoded 16-bit PCM so a WAV and its FLAC are one recording), quality
(``speech.quality``), then ASR against the transcript and the speaker against the consent.
Accepted audio is VAD-trimmed and loudness-normalised (speech RMS -20 dBFS).

Tolerances, measured on ``speech.testing.talents`` (10 training sentences per talent):

- ``max_wer`` = **0.40**: whisper tiny.en on the Piper-based talents scores 0-18 %; the espeak
  talents ``ava`` 0-67 % and ``ben`` 0-133 % (2 and 4 of 10 above 0.40); a transcript of
  another sentence scores 89 % or more (50 pairs, dev). Real voices should transcribe like the
  Piper ones or better;
- ``speaker_threshold`` = ``speech.consent.SINGLE_MATCH_THRESHOLD`` (0.78; single vs single,
  same talent min 0.888, different talents max 0.678);
- ``near_duplicate_cosine`` = **0.985** between speaker embeddings (against ``seen_embeddings``):
  a clip and its mp3 re-encoding score 0.996, two different sentences of one talent 0.87.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import struct
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from speech import asr, audio, quality, speaker, vad
from speech.consent import SINGLE_MATCH_THRESHOLD
from speech.errors import CodedError

MiB = 1024 * 1024
METADATA_NAME = "metadata.csv"
MAX_METADATA_BYTES = 5 * MiB
RATIO_MIN_BYTES = 64 * 1024  # smaller members may compress as well as they like
NEAR_DUPLICATE_COSINE = 0.985
TARGET_DBFS = -20.0
_CHUNK = 64 * 1024


class DatasetError(CodedError):
    pass


class _Corrupt(Exception):
    """A member that cannot be read (a per-file problem, not an archive-level refusal)."""


@dataclass(frozen=True)
class ZipLimits:
    max_members: int = 1000
    max_member_bytes: int = 50 * MiB
    max_total_bytes: int = 1024 * MiB
    max_ratio: float = 100.0
    max_archive_bytes: int = 512 * MiB


@dataclass
class ArchiveItem:
    name: str  # the path as listed in metadata.csv
    data: bytes
    transcript: str
    problem: dict | None = None  # {"code", "message"} when the file could not be read

    @property
    def ok(self) -> bool:
        return self.problem is None


# ------------------------------------------------------------------ archives


def _eocd_entries(data: bytes) -> int | None:
    """Entry count of the end-of-central-directory record (None when not found / zip64)."""
    tail = data[-(22 + 65535) :]
    pos = tail.rfind(b"PK\x05\x06")
    if pos < 0 or len(tail) - pos < 22:
        return None
    total = struct.unpack("<H", tail[pos + 10 : pos + 12])[0]
    return None if total == 0xFFFF else total


_DRIVE = re.compile(r"^[A-Za-z]:")


def _unsafe(name: str) -> str | None:
    if not name:
        return "an entry has an empty name"
    if "\x00" in name:
        return f"{name!r} contains a NUL character"
    if "\\" in name:
        return f"{name!r} contains a backslash"
    if name.startswith("/") or _DRIVE.match(name):
        return f"{name!r} is an absolute path"
    if any(part == ".." for part in name.split("/")):
        return f"{name!r} leaves the archive (..)"
    return None


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return (info.external_attr >> 16) & 0o170000 == 0o120000


def _clean(name: str) -> str:
    parts = [p for p in name.split("/") if p not in ("", ".")]
    return "/".join(parts)


class _Budget:
    def __init__(self, limits: ZipLimits):
        self.limits = limits
        self.total = 0

    def add(self, n: int, name: str) -> None:
        self.total += n
        if self.total > self.limits.max_total_bytes:
            raise DatasetError(
                "zip_bomb",
                f"the archive inflates to more than {self.limits.max_total_bytes // MiB} MiB",
            )


def _inflate(data: bytes, info: zipfile.ZipInfo, limit: int, budget: _Budget) -> bytes:
    """Inflate one member with our own bounded loop (stored or deflate).

    Raises DatasetError zip_bomb when it yields more than declared or than ``limit``;
    _Corrupt for unreadable data."""
    if info.flag_bits & 0x1:
        raise _Corrupt("the file is encrypted")
    off = info.header_offset
    head = data[off : off + 30]
    if len(head) < 30 or head[:4] != b"PK\x03\x04":
        raise _Corrupt("bad local header")
    name_len, extra_len = struct.unpack("<HH", head[26:30])
    start = off + 30 + name_len + extra_len
    raw = memoryview(data)[start : start + info.compress_size]
    declared = min(info.file_size, limit)

    def over(n: int) -> None:
        if n > declared:
            raise DatasetError(
                "zip_bomb",
                f"{info.filename} inflates to more than the {declared} bytes it declares",
            )

    if info.compress_type == zipfile.ZIP_STORED:
        over(len(raw))
        out = bytes(raw)
        budget.add(len(out), info.filename)
    elif info.compress_type == zipfile.ZIP_DEFLATED:
        d = zlib.decompressobj(-zlib.MAX_WBITS)
        parts: list[bytes] = []
        n = 0
        try:
            for i in range(0, len(raw), _CHUNK):
                buf = bytes(raw[i : i + _CHUNK])
                while buf:
                    piece = d.decompress(buf, _CHUNK)
                    n += len(piece)
                    over(n)
                    budget.add(len(piece), info.filename)
                    parts.append(piece)
                    buf = d.unconsumed_tail
                if d.eof:
                    break
            piece = d.flush(_CHUNK)
            n += len(piece)
            over(n)
            parts.append(piece)
        except zlib.error as exc:
            raise _Corrupt(f"corrupt deflate data ({exc})") from None
        if not d.eof:
            raise _Corrupt("truncated data")
        out = b"".join(parts)
    else:
        raise _Corrupt(f"unsupported compression method {info.compress_type}")
    if len(out) != info.file_size:
        raise _Corrupt("size differs from the header")
    if zlib.crc32(out) != info.CRC:
        raise _Corrupt("CRC check failed")
    return out


def _parse_metadata(text: str) -> list[tuple[str, str]]:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise DatasetError("bad_metadata", "metadata.csv lists no recordings")
    delim = "|" if "|" in lines[0] else ","
    rows = []
    for lineno, row in enumerate(csv.reader(lines, delimiter=delim), 1):
        if delim == "|":
            row = row[:2]
        if lineno == 1 and [c.strip().lower() for c in row[:1]] in (
            ["file"],
            ["filename"],
            ["path"],
        ):
            continue
        if len(row) < 2:
            raise DatasetError(
                "bad_metadata",
                f"metadata.csv line {lineno}: expected file{delim}transcript",
            )
        name = row[0].strip()
        transcript = (delim.join(row[1:]) if delim == "," else row[1]).strip()
        if not name:
            raise DatasetError("bad_metadata", f"metadata.csv line {lineno}: no file name")
        if _unsafe(name):
            raise DatasetError("unsafe_path", f"metadata.csv line {lineno}: {_unsafe(name)}")
        rows.append((name, transcript))
    if not rows:
        raise DatasetError("bad_metadata", "metadata.csv lists no recordings")
    dup = [n for n, c in Counter(_clean(n) for n, _ in rows).items() if c > 1]
    if dup:
        raise DatasetError("bad_metadata", f"metadata.csv lists {dup[0]!r} more than once")
    return rows


def read_archive(data: bytes, limits: ZipLimits | None = None) -> list[ArchiveItem]:
    """The recordings listed in a zip's ``metadata.csv`` (see the module docstring)."""
    lim = limits or ZipLimits()
    if len(data) > lim.max_archive_bytes:
        raise DatasetError(
            "archive_too_large",
            f"the archive is {len(data) / MiB:.0f} MiB; the limit is "
            f"{lim.max_archive_bytes / MiB:.0f} MiB. Split it into smaller archives.",
        )
    declared_entries = _eocd_entries(data)
    if declared_entries is not None and declared_entries > lim.max_members:
        raise DatasetError(
            "too_many_files",
            f"the archive has {declared_entries} entries; at most {lim.max_members} are allowed",
        )
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError):
        raise DatasetError("not_a_zip", "the upload is not a readable zip archive") from None
    if len(infos) > lim.max_members:
        raise DatasetError(
            "too_many_files",
            f"the archive has {len(infos)} entries; at most {lim.max_members} are allowed",
        )
    members: dict[str, zipfile.ZipInfo] = {}
    total = 0
    for info in infos:
        why = _unsafe(info.filename)
        if why is None and _is_symlink(info):
            why = f"{info.filename!r} is a symbolic link"
        if why:
            raise DatasetError("unsafe_path", f"refused: {why}")
        if info.is_dir():
            continue
        key = _clean(info.filename)
        if key in members:
            raise DatasetError("duplicate_member", f"{key!r} appears twice in the archive")
        members[key] = info
        total += info.file_size
        if info.file_size > RATIO_MIN_BYTES and info.file_size > lim.max_ratio * max(
            info.compress_size, 1
        ):
            raise DatasetError(
                "zip_bomb",
                f"{key} is compressed {info.file_size / max(info.compress_size, 1):.0f}:1 "
                f"(at most {lim.max_ratio:.0f}:1 is allowed)",
            )
    if total > lim.max_total_bytes:
        raise DatasetError(
            "zip_bomb",
            f"the archive declares {total / MiB:.0f} MiB of content; at most "
            f"{lim.max_total_bytes / MiB:.0f} MiB is allowed",
        )

    meta_names = [k for k in members if k.split("/")[-1] == METADATA_NAME and k.count("/") <= 1]
    root_meta = [k for k in meta_names if "/" not in k]
    chosen = root_meta or (meta_names if len(meta_names) == 1 else [])
    if not chosen:
        raise DatasetError(
            "missing_metadata",
            "the archive needs a metadata.csv (file,transcript per line) at its top level",
        )
    meta_key = chosen[0]
    base = meta_key[: -len(METADATA_NAME)]
    budget = _Budget(lim)
    meta_info = members[meta_key]
    if meta_info.file_size > MAX_METADATA_BYTES:
        raise DatasetError("bad_metadata", "metadata.csv is larger than 5 MiB")
    try:
        raw = _inflate(data, meta_info, MAX_METADATA_BYTES, budget)
    except _Corrupt as exc:
        raise DatasetError("bad_metadata", f"metadata.csv cannot be read: {exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DatasetError("bad_metadata", "metadata.csv is not UTF-8 text") from None

    items = []
    for name, transcript in _parse_metadata(text):
        key = _clean(base + name)
        stem = _clean(base + name) if "." in name.split("/")[-1] else None
        candidates = [key] if stem else [key + ".wav", _clean(base + "wavs/" + name) + ".wav"]
        info = next((members[c] for c in candidates if c in members), None)
        if info is None:
            items.append(
                _problem(name, transcript, "missing_file", f"{name} is not in the archive")
            )
            continue
        if not transcript:
            items.append(
                _problem(name, transcript, "empty_transcript", f"{name} has no transcript")
            )
            continue
        if info.file_size > lim.max_member_bytes:
            items.append(
                _problem(
                    name,
                    transcript,
                    "file_too_large",
                    f"{name} is {info.file_size / MiB:.0f} MiB; the limit is "
                    f"{lim.max_member_bytes / MiB:.0f} MiB",
                )
            )
            continue
        try:
            content = _inflate(data, info, lim.max_member_bytes, budget)
        except _Corrupt as exc:
            items.append(_problem(name, transcript, "corrupt_member", f"{name}: {exc}"))
            continue
        items.append(ArchiveItem(name, content, transcript))
    return items


def _problem(name: str, transcript: str, code: str, message: str) -> ArchiveItem:
    return ArchiveItem(name, b"", transcript, {"code": code, "message": message})


# ------------------------------------------------------------------ recordings


@dataclass(frozen=True)
class RecordingLimits:
    max_bytes: int = 50 * MiB
    min_duration_s: float = 1.0
    max_duration_s: float = 30.0
    min_sample_rate: int = 16000
    max_sample_rate: int = 48000
    max_wer: float = 0.40
    speaker_threshold: float = SINGLE_MATCH_THRESHOLD
    near_duplicate_cosine: float = NEAR_DUPLICATE_COSINE
    min_snr_db: float = 15.0
    max_clip_ratio: float = 0.001
    target_dbfs: float = TARGET_DBFS

    def quality_limits(self) -> quality.QualityLimits:
        return quality.QualityLimits(
            min_duration_s=self.min_duration_s,
            max_duration_s=self.max_duration_s,
            min_snr_db=self.min_snr_db,
            max_clip_ratio=self.max_clip_ratio,
        )


@dataclass
class RecordingCheck:
    ok: bool
    problems: list[dict] = field(default_factory=list)  # [{"code", "message"}]
    sha256: str = ""
    content_sha256: str = ""
    duration_s: float = 0.0
    sample_rate: int = 0
    assessment: dict = field(default_factory=dict)
    asr_transcript: str | None = None
    wer: float | None = None
    speaker_score: float | None = None
    embedding: np.ndarray | None = None
    audio: np.ndarray | None = None  # accepted audio: trimmed, normalised, float32
    sr: int = 0

    @property
    def codes(self) -> list[str]:
        return [p["code"] for p in self.problems]

    @property
    def audio_duration_s(self) -> float:
        return len(self.audio) / self.sr if self.audio is not None and self.sr else 0.0

    @classmethod
    def rejected(cls, code: str, message: str, sha256: str = "") -> RecordingCheck:
        """A rejection that never reached the checks (e.g. an archive item's problem)."""
        return cls(False, [{"code": code, "message": message}], sha256=sha256)

    def to_dict(self) -> dict:
        """JSON-safe summary (no audio, no embedding)."""
        return {
            "ok": self.ok,
            "problems": list(self.problems),
            "sha256": self.sha256,
            "content_sha256": self.content_sha256,
            "duration_s": self.duration_s,
            "sample_rate": self.sample_rate,
            "assessment": self.assessment,
            "asr_transcript": self.asr_transcript,
            "wer": self.wer,
            "speaker_score": self.speaker_score,
            "accepted_duration_s": round(self.audio_duration_s, 3),
        }


def content_hash(samples: np.ndarray, sr: int) -> str:
    """SHA-256 of the audio as 16-bit PCM plus its rate: equal for lossless re-encodings.

    Decoders give 16-bit samples as ``v / 32768``, so ``x * 32768`` restores them exactly."""
    x = np.asarray(samples, dtype=np.float64).reshape(-1)
    pcm = np.clip(np.round(x * 32768.0), -32768, 32767).astype("<i2")
    h = hashlib.sha256(f"pcm16:{sr}:".encode())
    h.update(pcm.tobytes())
    return h.hexdigest()


# speech.quality's messages already say what to do, except for these.
_ADVICE = {"no_speech": "The file must contain the speech of its transcript."}


def check_recording(
    data: bytes,
    transcript: str,
    *,
    limits: RecordingLimits | None = None,
    consent_embedding: np.ndarray | None = None,
    seen_hashes: set[str] | None = None,
    seen_embeddings: Sequence[np.ndarray] = (),
    asr_threads: int = 0,
) -> RecordingCheck:
    """Check one training recording (see the module docstring).

    ``seen_hashes``: hashes of recordings already accepted for this voice; when given, an
    accepted recording's ``sha256`` and ``content_sha256`` are added to it, so one set shared
    over an upload also catches duplicates within it. ``seen_embeddings``: embeddings of the
    accepted recordings, for near-duplicates in lossy re-encodings.
    """
    lim = limits or RecordingLimits()
    sha = hashlib.sha256(data).hexdigest()
    r = RecordingCheck(False, sha256=sha)

    def reject(code: str, message: str) -> RecordingCheck:
        r.problems.append({"code": code, "message": message})
        return r

    if len(data) > lim.max_bytes:
        return reject(
            "file_too_large",
            f"The file is {len(data) / MiB:.1f} MiB; at most {lim.max_bytes / MiB:.0f} MiB.",
        )
    try:
        x, sr = audio.decode(data, max_bytes=lim.max_bytes, max_duration_s=lim.max_duration_s)
    except audio.AudioError as exc:
        if exc.code == "audio_too_long":
            return reject(
                "too_long",
                f"The recording is longer than {lim.max_duration_s:.0f} s. Split it into "
                "shorter takes, one sentence or two each.",
            )
        return reject(
            "undecodable",
            "The file could not be read as audio (corrupt or not an audio format). Upload it "
            "again as WAV, FLAC, MP3, OGG/Opus or M4A.",
        )
    r.sample_rate = sr
    r.duration_s = round(len(x) / sr, 3)
    if not lim.min_sample_rate <= sr <= lim.max_sample_rate:
        return reject(
            "sample_rate",
            f"The recording is sampled at {sr} Hz; {lim.min_sample_rate}-{lim.max_sample_rate}"
            " Hz is needed. Record at 44.1 or 48 kHz.",
        )
    r.content_sha256 = content_hash(x, sr)
    seen = seen_hashes if seen_hashes is not None else set()
    if sha in seen or r.content_sha256 in seen:
        return reject("duplicate", "This recording was already uploaded.")

    a = quality.assess(x, sr, lim.quality_limits())
    r.assessment = a.to_dict()
    if a.problems:
        for p in a.problems:
            reject(p.code, f"{p.message} {_ADVICE.get(p.code, '')}".strip())
        return r

    text = (transcript or "").strip()
    if not asr.normalize_for_wer(text):
        return reject("empty_transcript", "The recording has no transcript. Add what is said.")

    trimmed = vad.trim(x, sr)
    if len(trimmed) < sr // 4:
        trimmed = x
    hyp = asr.transcribe(trimmed, sr, cpu_threads=asr_threads)
    r.asr_transcript = hyp
    r.wer = round(asr.wer(text, hyp), 4)
    if r.wer > lim.max_wer:
        reject(
            "transcript_mismatch",
            f"The speech does not match the transcript (word error rate {r.wer:.0%}; at most "
            f'{lim.max_wer:.0%}). Heard: "{hyp}". Correct the transcript or record the '
            "sentence again.",
        )
    try:
        emb = speaker.embed(trimmed, sr)
    except ValueError:
        return reject("no_speech", "Too little speech to recognise the voice.")
    r.embedding = emb
    near = max((speaker.cosine(emb, e) for e in seen_embeddings), default=0.0)
    if near >= lim.near_duplicate_cosine:
        reject("duplicate", "This recording is a copy of one already uploaded (re-encoded).")
    if consent_embedding is not None:
        r.speaker_score = round(speaker.cosine(consent_embedding, emb), 4)
        if r.speaker_score < lim.speaker_threshold:
            reject(
                "speaker_mismatch",
                f"The voice does not match the consent recording (similarity "
                f"{r.speaker_score:.2f}; at least {lim.speaker_threshold:.2f}). Only the "
                "talent who recorded the consent may record training data.",
            )
    if r.problems:
        return r
    r.audio = quality.normalize_loudness(trimmed, sr, lim.target_dbfs).astype(np.float32)
    r.sr = sr
    r.ok = True
    if seen_hashes is not None:
        seen_hashes.update((sha, r.content_sha256))
    return r


def check_archive(
    data: bytes,
    *,
    zip_limits: ZipLimits | None = None,
    limits: RecordingLimits | None = None,
    consent_embedding: np.ndarray | None = None,
    seen_hashes: set[str] | None = None,
    seen_embeddings: Sequence[np.ndarray] = (),
    asr_threads: int = 0,
) -> list[tuple[ArchiveItem, RecordingCheck]]:
    """``read_archive`` then ``check_recording`` on every item, duplicates checked across the
    archive (and against ``seen_hashes`` / ``seen_embeddings``). Raises DatasetError."""
    seen = set(seen_hashes or ())
    embs = list(seen_embeddings)
    out = []
    for item in read_archive(data, zip_limits):
        if item.problem:
            out.append((item, RecordingCheck.rejected(**item.problem)))
            continue
        chk = check_recording(
            item.data,
            item.transcript,
            limits=limits,
            consent_embedding=consent_embedding,
            seen_hashes=seen,
            seen_embeddings=embs,
            asr_threads=asr_threads,
        )
        if chk.ok and chk.embedding is not None:
            embs.append(chk.embedding)
        out.append((item, chk))
    return out


def summarize(checks: Iterable[RecordingCheck]) -> dict:
    """Totals over an upload: files, accepted, rejected, accepted seconds, problems by code."""
    checks = list(checks)
    accepted = [c for c in checks if c.ok]
    by_code = Counter(p["code"] for c in checks for p in c.problems)
    return {
        "files": len(checks),
        "accepted": len(accepted),
        "rejected": len(checks) - len(accepted),
        "accepted_seconds": round(sum(c.audio_duration_s for c in accepted), 3),
        "problems_by_code": dict(sorted(by_code.items())),
    }
