"""Training-data archives and per-recording checks, on real audio (no mocks)."""

from __future__ import annotations

import io
import json
import struct
import time
import tracemalloc
import zipfile

import numpy as np
import pytest
import soundfile as sf

from speech import audio, consent, datasets, dsp, vad
from speech.datasets import DatasetError, RecordingLimits, ZipLimits
from speech.testing import talents as T

SR = T.SAMPLE_RATE


def recorded(x, pad_s=0.8, level_db=-20.0, seed=0):
    """A take with room tone (-70 dBFS) before and after, speech at ``level_db``."""
    x = np.asarray(x, np.float32) * dsp.db_to_gain(level_db + 20.0)
    n = int(pad_s * SR)
    y = np.concatenate([np.zeros(n, np.float32), x, np.zeros(n, np.float32)])
    return (y + np.random.default_rng(seed).normal(0, 10 ** (-70 / 20), len(y))).astype(np.float32)


def wav(x, sr=SR):
    buf = io.BytesIO()
    sf.write(buf, np.asarray(x, np.float32), sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def make_zip(files: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()


def code_of(data, limits=None):
    with pytest.raises(DatasetError) as err:
        datasets.read_archive(data, limits)
    return err.value.code


# ----------------------------------------------------------------- archives (fast)


def test_archive_with_header_and_subfolder():
    meta = 'file,transcript\nwavs/a.wav,Hello there\nb.flac,"Yes, quoted, commas"\nc.wav,Gone\n'
    items = datasets.read_archive(
        make_zip({"metadata.csv": meta, "wavs/a.wav": b"AAAA", "b.flac": b"BB", "x.txt": b"?"})
    )
    assert [(i.name, i.data, i.transcript) for i in items[:2]] == [
        ("wavs/a.wav", b"AAAA", "Hello there"),
        ("b.flac", b"BB", "Yes, quoted, commas"),
    ]
    assert items[2].problem["code"] == "missing_file" and items[2].data == b""


def test_ljspeech_style_metadata_in_a_top_level_folder():
    meta = "LJ001|Printing, in the only sense.|Printing, in the only sense.\nLJ002|Second one\n"
    items = datasets.read_archive(
        make_zip(
            {
                "LJSpeech/metadata.csv": meta,
                "LJSpeech/wavs/LJ001.wav": b"1",
                "LJSpeech/LJ002.wav": b"2",
            }
        )
    )
    assert [(i.name, i.data, i.transcript, i.ok) for i in items] == [
        ("LJ001", b"1", "Printing, in the only sense.", True),
        ("LJ002", b"2", "Second one", True),
    ]


def test_missing_and_bad_metadata():
    assert code_of(make_zip({"a.wav": b"x"})) == "missing_metadata"
    assert code_of(make_zip({"metadata.csv": b"\xff\xfe\xfa bad", "a.wav": b"x"})) == "bad_metadata"
    assert code_of(make_zip({"metadata.csv": "a.wav\n", "a.wav": b"x"})) == "bad_metadata"
    assert code_of(make_zip({"metadata.csv": "\n\n"})) == "bad_metadata"
    assert code_of(make_zip({"metadata.csv": "a.wav,x\n./a.wav,y\n", "a.wav": b"x"})) == (
        "bad_metadata"
    )
    empty = datasets.read_archive(make_zip({"metadata.csv": "a.wav,\n", "a.wav": b"x"}))
    assert empty[0].problem["code"] == "empty_transcript"


def test_not_a_zip_and_archive_size():
    assert code_of(b"PK\x03\x04 not really a zip") == "not_a_zip"
    assert code_of(wav(np.zeros(100))) == "not_a_zip"
    assert code_of(b"x" * 2000, ZipLimits(max_archive_bytes=1000)) == "archive_too_large"


@pytest.mark.parametrize(
    "name", ["../evil.wav", "/abs.wav", "a/../../evil.wav", "..\\evil.wav", "C:/evil.wav"]
)
def test_path_traversal_is_refused(name):
    data = make_zip({"metadata.csv": "a.wav,hi\n", "a.wav": b"x", name: b"evil"})
    assert code_of(data) == "unsafe_path"


def test_unsafe_paths_in_metadata_and_symlinks_are_refused():
    assert code_of(make_zip({"metadata.csv": "../a.wav,hi\n", "a.wav": b"x"})) == "unsafe_path"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("metadata.csv", "a.wav,hi\n")
        link = zipfile.ZipInfo("a.wav")
        link.external_attr = (0o120777 << 16) | 0x20
        z.writestr(link, "/etc/passwd")
    assert code_of(buf.getvalue()) == "unsafe_path"


def test_too_many_members():
    files = {"metadata.csv": "f0.wav,x\n", **{f"f{i}.wav": b"x" for i in range(6)}}
    assert code_of(make_zip(files), ZipLimits(max_members=5)) == "too_many_files"
    assert len(datasets.read_archive(make_zip(files), ZipLimits(max_members=7))) == 1


def _bomb(n_bytes: int) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("metadata.csv", "bomb.wav,boom\n")
        with z.open("bomb.wav", "w", force_zip64=False) as f:
            chunk = bytes(1 << 20)
            for _ in range(n_bytes >> 20):
                f.write(chunk)
    return buf.getvalue()


def test_zip_bomb_is_refused_without_inflating_it():
    data = _bomb(200 << 20)  # 200 MiB of zeros in ~200 KiB
    assert len(data) < 1 << 20
    tracemalloc.start()
    t0 = time.monotonic()
    assert code_of(data) == "zip_bomb"
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert time.monotonic() - t0 < 1.0 and peak < 8 << 20
    # a member within the ratio, but over the total budget
    big = make_zip({"metadata.csv": "a.wav,x\n", "a.wav": np.random.bytes(300_000)})
    assert code_of(big, ZipLimits(max_total_bytes=200_000)) == "zip_bomb"


def _patch_sizes(data: bytes, name: bytes, size: int) -> bytes:
    """Rewrite the declared uncompressed size of ``name`` in both headers (a lying zip)."""
    b = bytearray(data)
    pos = 0
    while (pos := b.find(b"PK\x01\x02", pos)) >= 0:  # central directory entries
        n = struct.unpack("<H", b[pos + 28 : pos + 30])[0]
        if b[pos + 46 : pos + 46 + n] == name:
            b[pos + 24 : pos + 28] = struct.pack("<I", size)
            local = struct.unpack("<I", b[pos + 42 : pos + 46])[0]
            b[local + 22 : local + 26] = struct.pack("<I", size)
        pos += 4
    return bytes(b)


def test_lying_size_header_cannot_bypass_the_limits():
    data = make_zip({"metadata.csv": "a.wav,x\n", "a.wav": bytes(5 << 20)})
    liar = _patch_sizes(data, b"a.wav", 1000)  # claims 1000 bytes: ratio looks harmless
    info = zipfile.ZipFile(io.BytesIO(liar)).getinfo("a.wav")
    assert info.file_size == 1000
    tracemalloc.start()
    assert code_of(liar) == "zip_bomb"
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 4 << 20


def test_corrupt_member_is_a_per_file_problem():
    data = bytearray(make_zip({"metadata.csv": "a.wav,x\n", "a.wav": np.random.bytes(5000)}))
    i = data.find(b"a.wav") + 5 + 100  # inside a.wav's compressed data
    data[i : i + 50] = bytes(50)
    items = datasets.read_archive(bytes(data))
    assert items[0].problem["code"] == "corrupt_member"


# ----------------------------------------------------------------- recordings (real models)


@pytest.fixture(scope="module")
def dev():
    return T.by_name("dev")


@pytest.fixture(scope="module")
def consent_embedding(dev):
    return consent.embed_recording(T.render(dev, T.CONSENT_SENTENCES[0]), SR)


@pytest.fixture(scope="module")
def takes(dev):
    return [recorded(T.render(dev, s), seed=i) for i, s in enumerate(T.TRAIN_SENTENCES[:3])]


def test_recording_limits_fast():
    r = datasets.check_recording(b"garbage" * 100, "hello")
    assert r.codes == ["undecodable"] and not r.ok
    assert datasets.check_recording(
        b"x" * 200, "hi", limits=RecordingLimits(max_bytes=100)
    ).codes == ["file_too_large"]
    low = datasets.check_recording(wav(np.zeros(8000 * 2), 8000), "hi")
    assert low.codes == ["sample_rate"] and low.sample_rate == 8000
    silent = datasets.check_recording(wav(np.zeros(SR * 2)), "hi")
    assert silent.codes == ["silent"] and silent.asr_transcript is None
    assert datasets.check_recording(wav(np.zeros(SR * 40)), "hi").codes == ["too_long"]


@pytest.mark.slow
def test_good_archive_is_accepted_trimmed_and_normalised(takes, consent_embedding):
    quiet = recorded(T.render(T.by_name("dev"), T.TRAIN_SENTENCES[3]), pad_s=1.0, level_db=-32)
    files = {
        "metadata.csv": "file,transcript\n"
        + "".join(f"t{i}.wav,{s}\n" for i, s in enumerate(T.TRAIN_SENTENCES[:3]))
        + f"quiet.flac,{T.TRAIN_SENTENCES[3]}\n",
        **{f"t{i}.wav": wav(x) for i, x in enumerate(takes)},
        "quiet.flac": audio.encode(quiet, SR, "flac"),
    }
    results = datasets.check_archive(make_zip(files), consent_embedding=consent_embedding)
    assert [c.ok for _, c in results] == [True] * 4, [c.problems for _, c in results]
    summary = datasets.summarize(c for _, c in results)
    assert summary["files"] == summary["accepted"] == 4 and summary["problems_by_code"] == {}
    json.dumps([c.to_dict() for _, c in results])
    chk = results[3][1]
    assert chk.sr == SR and chk.audio.dtype == np.float32 and chk.speaker_score >= 0.78
    # trimmed: ~1 s of leading and trailing room tone is gone, ~0.1 s pad left
    lead = int(np.argmax(np.abs(chk.audio) > 10 ** (-45 / 20))) / SR
    assert lead < 0.25 and chk.audio_duration_s < len(quiet) / SR - 1.5
    # normalised: the speech RMS moved from -32 to -20 dBFS
    mask = vad.speech_mask(chk.audio, SR)
    level = 20 * np.log10(np.sqrt(np.mean(chk.audio[mask].astype(np.float64) ** 2)))
    assert abs(level - datasets.TARGET_DBFS) < 1.0
    assert summary["accepted_seconds"] == pytest.approx(
        sum(c.audio_duration_s for _, c in results), abs=0.01
    )


@pytest.mark.slow
def test_bad_recordings_are_rejected_with_a_reason_each(dev, takes, consent_embedding):
    good = takes[0]
    rng = np.random.default_rng(7)
    speech_rms = 10 ** (-20 / 20)
    noisy = good + rng.normal(0, speech_rms / 10 ** (5 / 20), len(good)).astype(np.float32)
    clipped = np.clip(good * 12, -1, 1)
    pcm, _ = sf.read(io.BytesIO(wav(good)), dtype="int16")  # the same take, converted to FLAC
    buf = io.BytesIO()
    sf.write(buf, pcm, SR, format="FLAC")
    flac_copy = buf.getvalue()
    cases = {
        "corrupt.wav": (wav(good)[:20] + bytes(rng.integers(0, 256, 3000, dtype=np.uint8)), "x"),
        "silent.wav": (wav(np.zeros(3 * SR)), "Nothing."),
        "clipped.wav": (wav(clipped), T.TRAIN_SENTENCES[0]),
        "noisy.wav": (wav(noisy), T.TRAIN_SENTENCES[0]),
        "good.wav": (wav(good), T.TRAIN_SENTENCES[0]),
        "again.wav": (wav(good), T.TRAIN_SENTENCES[0]),
        "again.flac": (flac_copy, T.TRAIN_SENTENCES[0]),
        "wrong_text.wav": (wav(takes[1]), T.TRAIN_SENTENCES[10]),
        "other.wav": (
            wav(recorded(T.render(T.by_name("ava"), T.TRAIN_SENTENCES[2]))),
            T.TRAIN_SENTENCES[2],
        ),
    }
    seen: set[str] = set()
    got = {}
    for name, (data, text) in cases.items():
        got[name] = datasets.check_recording(
            data, text, consent_embedding=consent_embedding, seen_hashes=seen
        )
    codes = {n: r.codes for n, r in got.items()}
    assert codes["corrupt.wav"] == ["undecodable"]
    assert codes["silent.wav"] == ["silent"]
    assert "clipped" in codes["clipped.wav"]
    assert "too_noisy" in codes["noisy.wav"]
    assert codes["good.wav"] == []
    assert codes["again.wav"] == ["duplicate"] and codes["again.flac"] == ["duplicate"]
    assert got["again.flac"].content_sha256 == got["good.wav"].content_sha256
    assert got["again.flac"].sha256 != got["good.wav"].sha256
    assert codes["wrong_text.wav"] == ["transcript_mismatch"]
    assert got["wrong_text.wav"].wer > 0.4 and got["wrong_text.wav"].asr_transcript
    assert codes["other.wav"] == ["speaker_mismatch"] and got["other.wav"].speaker_score < 0.78
    for r in got.values():
        assert r.ok == (not r.problems) and all(p["message"] for p in r.problems)
    # quality failures never reach ASR or the speaker encoder
    assert got["noisy.wav"].asr_transcript is None and got["clipped.wav"].embedding is None
    s = datasets.summarize(got.values())
    assert (s["files"], s["accepted"], s["rejected"]) == (9, 1, 8)
    assert s["problems_by_code"]["duplicate"] == 2


@pytest.mark.slow
def test_lossy_re_encoding_is_a_near_duplicate(takes):
    first = datasets.check_recording(wav(takes[2]), T.TRAIN_SENTENCES[2])
    assert first.ok
    ogg = audio.encode(takes[2], SR, "ogg")  # lossy Vorbis: a new PCM hash
    again = datasets.check_recording(
        ogg,
        T.TRAIN_SENTENCES[2],
        seen_hashes={first.sha256, first.content_sha256},
        seen_embeddings=[first.embedding],
    )
    assert again.codes == ["duplicate"] and again.content_sha256 != first.content_sha256
