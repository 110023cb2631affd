"""Speech library tests: engine, DSP, text front-end, codecs, ASR round trip.

Plain pytest, no Django. The voice is loaded once per module. The ASR/WER test
takes ~6 s and is marked ``slow``.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess

import numpy as np
import pytest
import soundfile as sf

from speech import audio, dsp, text
from speech.engines.base import (
    EMOTIONS,
    ControlError,
    ModelVersionSpec,
    SynthesisControls,
    synthesize_chunks,
    validate_controls,
)
from speech.engines.piper_engine import PiperEngine, default_spec, default_voice_paths

SENTENCE = (
    "The weather today is sunny with a light breeze, and everyone seems to be "
    "enjoying the afternoon in the park."
)


@pytest.fixture(scope="module")
def engine():
    eng = PiperEngine(threads=2, deterministic=True)
    eng.load()
    yield eng
    eng.close()


@pytest.fixture(scope="module")
def neutral(engine):
    return engine.synthesize(SENTENCE, SynthesisControls())


@pytest.fixture(scope="module")
def neutral_stats(engine, neutral):
    return dsp.analyze(neutral, engine.sample_rate)


def tone(sr: int = 22050, seconds: float = 1.5, hz: float = 220.0) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    return (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def paired_f0_ratio(a: np.ndarray, b: np.ndarray, sr: int) -> float:
    """Median frame-wise F0 ratio b/a over frames voiced in both (same timing)."""
    fa = dsp.clean_f0(dsp.estimate_f0(a, sr)[0])
    fb = dsp.clean_f0(dsp.estimate_f0(b, sr)[0])
    n = min(len(fa), len(fb))
    m = (fa[:n] > 0) & (fb[:n] > 0)
    assert m.sum() > 30, "too few voiced frames to compare"
    return float(np.median(fb[:n][m] / fa[:n][m]))


# --------------------------------------------------------------------- engine


def test_spec_and_capabilities(engine):
    spec = engine.spec
    model, _ = default_voice_paths()
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    assert spec.artefact_checksum == digest
    assert spec.id == f"piper:joe-medium@{digest[:12]}"
    assert default_spec() == spec
    caps = engine.capabilities
    assert caps.sample_rate == engine.sample_rate == 22050
    assert set(caps.emotions) == set(EMOTIONS)
    assert caps.native_controls == frozenset({"speed"})
    assert caps.fine_tune is False and caps.emotion_method == "prosody"
    with pytest.raises(NotImplementedError):
        engine.fine_tune()


def test_load_rejects_checksum_mismatch():
    with pytest.raises(ValueError, match="checksum"):
        PiperEngine().load(ModelVersionSpec("piper", "joe-medium", "0" * 64))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"speed": 2.5}, "speed"),
        ({"speed": True}, "speed"),
        ({"pitch": -7}, "pitch"),
        ({"volume": float("nan")}, "volume"),
        ({"intensity": 1.5}, "intensity"),
        ({"emotion": "bored"}, "emotion"),
    ],
)
def test_controls_validation(kwargs, field):
    with pytest.raises(ControlError) as ei:
        validate_controls(SynthesisControls(**kwargs))
    assert ei.value.field == field
    assert ei.value.allowed  # always tells the caller what is allowed
    if field == "emotion":
        assert set(ei.value.allowed) == set(EMOTIONS)


def test_controls_from_dict_rejects_unknown_keys():
    with pytest.raises(ControlError) as ei:
        SynthesisControls.from_dict({"speed": 1.0, "style": "news"})
    assert ei.value.field == "style" and "speed" in ei.value.allowed
    assert SynthesisControls.from_dict({"pitch": 2}).pitch == 2
    with pytest.raises(ControlError):
        SynthesisControls(speed=1.8).with_overrides(rate=1.25)


def test_deterministic_and_float32(engine, neutral):
    again = engine.synthesize(SENTENCE, SynthesisControls())
    assert neutral.dtype == np.float32 and neutral.ndim == 1
    assert np.array_equal(neutral, again)
    assert np.max(np.abs(neutral)) <= 0.97


@pytest.mark.parametrize(("speed", "expected"), [(0.5, 2.0), (2.0, 0.5), (1.25, 0.8)])
def test_speed_changes_duration(engine, neutral_stats, speed, expected):
    y = engine.synthesize(SENTENCE, SynthesisControls(speed=speed))
    ratio = dsp.active_duration(y, engine.sample_rate) / neutral_stats["active_s"]
    assert ratio == pytest.approx(expected, rel=0.15)


@pytest.mark.parametrize("semitones", [4.0, -4.0])
def test_pitch_shift_changes_f0_by_ratio(engine, neutral, semitones):
    y = engine.synthesize(SENTENCE, SynthesisControls(pitch=semitones))
    assert len(y) == len(neutral)  # duration preserved
    ratio = paired_f0_ratio(neutral, y, engine.sample_rate)
    assert ratio == pytest.approx(2 ** (semitones / 12), rel=0.03)


def test_volume_is_linear_gain_without_clipping(engine, neutral):
    half = engine.synthesize(SENTENCE, SynthesisControls(volume=0.5))
    assert 20 * np.log10(dsp.rms(half) / dsp.rms(neutral)) == pytest.approx(-6.02, abs=0.2)
    loud = engine.synthesize(SENTENCE, SynthesisControls(volume=2.0))
    assert np.max(np.abs(loud)) <= 0.97
    assert dsp.rms(loud) > dsp.rms(neutral) * 1.5
    assert not np.any(engine.synthesize(SENTENCE, SynthesisControls(volume=0.0)))


def test_intensity_zero_is_neutral(engine, neutral):
    y = engine.synthesize(SENTENCE, SynthesisControls(emotion="sad", intensity=0.0))
    assert np.allclose(y, neutral, atol=1e-6)


@pytest.mark.parametrize("emotion", [e for e in EMOTIONS if e != "neutral"])
def test_emotion_differs_measurably_from_neutral(engine, neutral, neutral_stats, emotion):
    sr = engine.sample_rate
    y = engine.synthesize(SENTENCE, SynthesisControls(emotion=emotion, intensity=1.0))
    s = dsp.analyze(y, sr)
    n = neutral_stats
    deltas = {
        "duration": abs(s["active_s"] / n["active_s"] - 1) > 0.04,
        "rms": abs(s["rms_db"] - n["rms_db"]) > 1.0,
        "centroid": abs(s["centroid_hz"] / n["centroid_hz"] - 1) > 0.04,
        "f0_mean": s["f0_mean"] == 0 or abs(12 * np.log2(s["f0_mean"] / n["f0_mean"])) > 0.75,
        "voicing": abs(s["voiced_frac"] - n["voiced_frac"]) > 0.08,
    }
    assert sum(deltas.values()) >= 3, (emotion, s, n)
    # direction checks: the profile must do what its name says
    if emotion in ("sad", "calm"):
        assert s["rms_db"] < n["rms_db"] and s["active_s"] > n["active_s"]
        assert s["f0_mean"] < n["f0_mean"]
    if emotion in ("happy", "excited", "angry"):
        assert s["rms_db"] > n["rms_db"] and s["centroid_hz"] > n["centroid_hz"]
        assert s["f0_mean"] > n["f0_mean"]
    if emotion == "whispery":
        assert s["voiced_frac"] < 0.5 * n["voiced_frac"]
        assert s["rms_db"] < n["rms_db"] - 3


def test_range_factor_expands_and_compresses_f0(engine, neutral):
    sr = engine.sample_rate
    f0n = dsp.clean_f0(dsp.estimate_f0(neutral, sr)[0])
    for factor, lo, hi in ((1.6, 1.25, 1.9), (0.5, 0.3, 0.75)):
        y = dsp.psola(neutral, sr, range_factor=factor)
        f0y = dsp.clean_f0(dsp.estimate_f0(y, sr)[0])
        m = (f0n > 0) & (f0y > 0)
        a = 12 * np.log2(f0n[m] / np.median(f0n[m]))
        b = 12 * np.log2(f0y[m] / np.median(f0y[m]))
        assert lo < np.polyfit(a, b, 1)[0] < hi


# ------------------------------------------------------------------------ dsp


def test_estimate_f0_on_sine():
    sr = 16000
    f0, _ = dsp.estimate_f0(tone(sr, 1.0, 150.0), sr)
    assert np.median(f0[f0 > 0]) == pytest.approx(150.0, rel=0.01)
    assert np.mean(f0 > 0) > 0.9


def test_crossfade_join_lengths_and_pause():
    sr = 1000
    a, b = np.ones(500, np.float32), np.ones(300, np.float32)
    joined = dsp.crossfade_join([a, b], sr, crossfade_ms=20)
    assert len(joined) == 500 + 300 - 20
    # equal-power: the overlap never dips much below unity for correlated signals
    assert joined.min() > 0.95 and joined.max() <= np.sqrt(2) + 1e-6
    paused = dsp.crossfade_join([a, b], sr, crossfade_ms=20, pauses_ms=[250, 100])
    assert len(paused) == 500 + 250 + 300 + 100
    assert not paused[500:750].any()
    lead = dsp.crossfade_join([np.zeros(0, np.float32), a], sr, pauses_ms=[200, 0])
    assert len(lead) == 700


def test_limiter_and_resample():
    sr = 22050
    x = tone(sr) * 4
    y = dsp.limit(x, sr)
    assert np.max(np.abs(y)) <= 0.97
    r = dsp.resample(tone(sr), sr, 16000)
    assert len(r) == int(1.5 * 16000) and r.dtype == np.float32


def test_pitch_shift_wsola_on_tone():
    sr = 22050
    y = dsp.pitch_shift(tone(sr, 1.0, 200.0), sr, 4.0, method="wsola")
    assert len(y) == sr
    f0, _ = dsp.estimate_f0(y, sr)
    assert np.median(f0[f0 > 0]) == pytest.approx(200 * 2 ** (4 / 12), rel=0.03)


# ----------------------------------------------------------------------- text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("I have 3 apples.", "I have three apples."),
        (
            "It is 1,234,567.",
            "It is one million two hundred thirty-four thousand five hundred sixty-seven.",
        ),
        ("The 21st and 2nd and 112th.", "The twenty-first and second and one hundred twelfth."),
        ("Pi is 3.14", "Pi is three point one four"),
        ("It was -5 outside.", "It was minus five outside."),
        ("Pay $12.50 now", "Pay twelve dollars and fifty cents now"),
        ("Only $1 or $0.05", "Only one dollar or five cents"),
        ("It costs €3 or £2.01", "It costs three euros or two pounds and one penny"),
        ("A $2.5 million deal", "A two point five million dollars deal"),
        ("Up 45% or 3.5%", "Up forty-five percent or three point five percent"),
        ("On 2026-11-21.", "On November twenty-first, twenty twenty-six."),
        ("On 11/21/2026.", "On November twenty-first, twenty twenty-six."),
        ("On Nov 21, 2026.", "On November twenty-first, twenty twenty-six."),
        (
            "Since 1905, in 2026 or 2000 cars",
            "Since nineteen oh five, in twenty twenty-six or two thousand cars",
        ),
        ("At 3:30 pm today", "At three thirty p m today"),
        ("At 3:05 or 15:00", "At three oh five or fifteen hundred"),
        ("Dr. Smith met Mr. and Mrs. Jones", "Doctor Smith met Mister and Missus Jones"),
        ("She lives on Main St. Next door", "She lives on Main Street. Next door"),
        ("Visit St. Louis", "Visit Saint Louis"),
        ("Fruit, e.g. apples, etc.", "Fruit, for example apples, et cetera."),
        ("In the 1990s", "In the nineteen nineties"),
        ("Agent 007", "Agent zero zero seven"),
    ],
)
def test_normalize_text(raw, expected):
    assert text.normalize_text(raw) == expected


def test_number_words_edges():
    assert text.number_to_words(0) == "zero"
    assert text.number_to_words(100) == "one hundred"
    assert text.number_to_words(1_000_001) == "one million one"
    assert text.ordinal_to_words(1_000_000) == "one millionth"
    assert text.ordinal_to_words(40) == "fortieth"
    assert text.year_to_words(2026) == "twenty twenty-six"


def test_split_sentences_respects_max_chars():
    body = "First sentence here. Second one! Third? " + (
        "This clause is long, and this one too; another follows: then more words " * 6
    )
    chunks = text.split_sentences(body, max_chars=60)
    assert chunks[:3] == ["First sentence here.", "Second one!", "Third?"]
    assert all(0 < len(c) <= 60 for c in chunks)
    assert " ".join(chunks).split() == body.split()
    assert text.split_sentences("x" * 130, 50) == ["x" * 50, "x" * 50, "x" * 30]


def test_ssml_parse():
    segs = text.parse_ssml(
        '<speak>Hello <break time="500ms"/> world. '
        '<prosody rate="slow" pitch="+2st">Slow and high '
        '<prosody rate="80%" pitch="-10%">nested</prosody></prosody>'
        ' end<break time="1s"/></speak>'
    )
    assert [s.text for s in segs] == ["Hello", "world.", "Slow and high", "nested", "end"]
    assert segs[0].pause_after_ms == 500 and segs[-1].pause_after_ms == 1000
    assert segs[2].rate == pytest.approx(0.8) and segs[2].pitch_st == 2.0
    assert segs[3].rate == pytest.approx(0.64)
    assert segs[3].pitch_st == pytest.approx(2 + 12 * np.log2(0.9))
    assert segs[1].overrides == {}
    assert text.parse_ssml("plain text") == [text.Segment("plain text")]
    assert text.parse_ssml('<speak><prosody rate="0.8">x</prosody></speak>')[0].rate == 0.8


@pytest.mark.parametrize(
    "bad",
    [
        "<speak>unclosed",
        "<speak>Hi <emphasis>there</emphasis></speak>",
        '<speak>Hi <break time="5 sec"/></speak>',
        '<speak>Hi <break time="20s"/></speak>',
        '<speak><prosody rate="ludicrous">x</prosody></speak>',
        '<speak><prosody pitch="+200Hz">x</prosody></speak>',
        '<speak><prosody pitch="+9st">x</prosody></speak>',
        '<speak><prosody volume="loud">x</prosody></speak>',
        '<!DOCTYPE x [<!ENTITY a "b">]><speak>&a;</speak>',
        'Hello <break time="1s"/> world',
    ],
)
def test_invalid_ssml(bad):
    with pytest.raises(text.TextError) as ei:
        text.prepare(bad)
    assert ei.value.code == "invalid_ssml" and ei.value.message


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("", "text_empty"),
        (" \n\t", "text_empty"),
        ("?! ...", "text_unspeakable"),
        ('<speak><break time="1s"/></speak>', "text_unspeakable"),
        ("a" * 5001, "text_too_long"),
    ],
)
def test_text_validation_errors(raw, code):
    with pytest.raises(text.TextError) as ei:
        text.prepare(raw)
    assert ei.value.code == code


def test_prepare_applies_prosody_and_pauses(engine):
    chunks = text.prepare(
        '<speak><break time="200ms"/>Hi Dr. Who. '
        '<prosody rate="fast">It is 5 pm.</prosody></speak>',
        max_chunk_chars=50,
    )
    assert chunks[0] == text.Segment("", pause_after_ms=200)
    assert [c.text for c in chunks[1:]] == ["Hi Doctor Who.", "It is five p m."]
    assert chunks[2].rate == 1.25
    y = synthesize_chunks(engine, chunks, SynthesisControls())
    assert len(y) > int(0.2 * engine.sample_rate)
    assert not y[: int(0.15 * engine.sample_rate)].any()


# ---------------------------------------------------------------------- codecs


def _ffprobe(data: bytes) -> dict:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-of", "json", "-i", "pipe:0"],
        input=data,
        capture_output=True,
        check=True,
    )
    return json.loads(out.stdout)["streams"][0]


@pytest.mark.parametrize("fmt", audio.FORMATS)
@pytest.mark.parametrize("target_sr", [8000, 22050, 48000])
def test_encode_decode_roundtrip(fmt, target_sr):
    sr = 22050
    x = tone(sr)
    data = audio.encode(x, sr, fmt, target_sr)
    eff = audio.effective_sample_rate(fmt, target_sr)
    if fmt == "pcm":
        y = np.frombuffer(data, "<i2").astype(np.float32) / 32767
        assert len(y) == int(1.5 * target_sr)
        return
    y, dsr = audio.decode(data)
    assert dsr == eff
    # mp3 decoders may keep encoder padding (up to ~2 frames)
    assert len(y) / dsr == pytest.approx(1.5, abs=0.2 if fmt == "mp3" else 0.01)
    info = _ffprobe(data)  # independent decoder agrees on rate (opus always reports 48k)
    assert int(info["sample_rate"]) == (48000 if fmt == "opus" else eff)
    if fmt in ("wav", "flac"):
        assert np.max(np.abs(y - dsp.resample(x, sr, eff))) < 1e-3
    else:  # lossy: the tone's frequency must survive
        f0, _ = dsp.estimate_f0(y, dsr)
        assert np.median(f0[f0 > 0]) == pytest.approx(220, rel=0.02)


def test_opus_resamples_unsupported_rates():
    assert audio.effective_sample_rate("opus", 22050) == 24000
    assert audio.effective_sample_rate("opus", 44100) == 48000
    assert audio.effective_sample_rate("mp3", 22050) == 22050
    with pytest.raises(ValueError):
        audio.encode(tone(), 22050, "wav", 11025)
    with pytest.raises(ValueError):
        audio.encode(tone(), 22050, "aac", 22050)
    assert set(audio.CONTENT_TYPES) == set(audio.FORMATS)


@pytest.mark.parametrize("fmt", audio.FORMATS)
def test_stream_encoder(fmt):
    sr = 22050
    x = tone(sr, 2.0)
    parts = [x[i : i + sr // 2] for i in range(0, len(x), sr // 2)]
    enc = audio.StreamEncoder(fmt, sr, 24000)
    data = b"".join(enc.write(p) for p in parts) + enc.close()
    if fmt == "pcm":
        assert len(data) == 2 * 48000
        return
    if fmt == "wav":
        assert data[:4] == b"RIFF" and len(data) == 44 + 2 * 48000
    y, dsr = audio.decode(data)
    assert dsr == 24000
    assert len(y) / dsr == pytest.approx(2.0, abs=0.1)


@pytest.mark.parametrize("fmt", ["mp3", "ogg", "opus", "flac"])
def test_stream_encoder_sends_bytes_before_the_stream_ends(fmt):
    """A stream's first second comes out while the rest is still being made (ffmpeg must not
    hold its input back to probe it)."""
    import time

    sr = 22050
    enc = audio.StreamEncoder(fmt, sr)
    data = enc.write(tone(sr, 1.0))
    deadline = time.monotonic() + 20  # liveness, not a speed figure
    while not data and time.monotonic() < deadline:
        time.sleep(0.02)
        data = enc.write(np.zeros(0, np.float32))  # nothing new: collects what is ready
    enc.close()
    assert data


@pytest.mark.parametrize("fmt", ["pcm", "wav", "mp3", "opus"])
def test_stream_encoder_hands_every_byte_to_its_callback(fmt):
    import threading

    sr = 22050
    got: list[bytes] = []
    arrived = threading.Event()
    enc = audio.StreamEncoder(fmt, sr, on_bytes=lambda b: (got.append(b), arrived.set()))
    assert enc.write(tone(sr, 1.0)) == b""
    assert arrived.wait(20)  # before the stream ends (liveness, not a speed figure)
    assert enc.close() == b""
    reference = audio.StreamEncoder(fmt, sr)
    expected = reference.write(tone(sr, 1.0)) + reference.close()
    data = b"".join(got)
    if fmt in ("pcm", "wav"):
        assert data == expected
    else:
        y, dsr = audio.decode(data)
        assert len(y) / dsr == pytest.approx(1.0, abs=0.1)


def test_decode_rejects_bad_input():
    good = audio.encode(tone(), 22050, "wav")
    rng = np.random.default_rng(0)
    cases = {
        b"": "audio_empty",
        b"RIFF" + rng.integers(0, 256, 4000, dtype=np.uint8).tobytes(): "audio_corrupt",
        good[:44]: "audio_empty",
        b"just some text, definitely not audio": "audio_unsupported_format",
    }
    for data, code in cases.items():
        with pytest.raises(audio.AudioError) as ei:
            audio.decode(data)
        assert ei.value.code == code, data[:10]
    with pytest.raises(audio.AudioError) as ei:
        audio.decode(rng.integers(0, 256, 8000, dtype=np.uint8).tobytes())
    assert ei.value.code in ("audio_corrupt", "audio_unsupported_format")
    with pytest.raises(audio.AudioError) as ei:
        audio.decode(good, max_duration_s=1.0)
    assert ei.value.code == "audio_too_long"
    with pytest.raises(audio.AudioError) as ei:
        audio.decode(good, max_bytes=1000)
    assert ei.value.code == "audio_too_long"


def test_decode_is_content_based_mp3_named_wav(tmp_path):
    path = tmp_path / "upload.wav"
    path.write_bytes(audio.encode(tone(), 22050, "mp3", 16000))
    y, sr = audio.decode(path.read_bytes())
    assert sr == 16000 and len(y) / sr == pytest.approx(1.5, abs=0.2)


def test_decode_stereo_to_mono():
    buf = io.BytesIO()
    st = np.stack([tone(), -tone() * 0.5], axis=1)
    sf.write(buf, st, 22050, format="FLAC")
    y, sr = audio.decode(buf.getvalue())
    assert y.ndim == 1 and sr == 22050
    assert np.max(np.abs(y)) == pytest.approx(0.125, abs=0.01)


# ------------------------------------------------------------------------ ASR

LONG_TEXT = (
    "Good morning, and welcome to the quarterly update. "
    "Revenue grew by 12% compared with last year, reaching $4.5 million. "
    "Our support team answered more than 3,000 calls in October. "
    "The new office opens on Nov 21, 2026, at 9:30 am. "
    "Please send your questions to the operations team before Friday. "
    "Thank you for listening, and have a wonderful day."
)


@pytest.mark.slow
def test_long_text_chunked_synthesis_is_intelligible(engine):
    from speech import asr

    chunks = text.prepare(LONG_TEXT, max_chunk_chars=120)
    assert len(chunks) >= 6
    y = synthesize_chunks(engine, chunks, SynthesisControls(), crossfade_ms=30)
    hyp = asr.transcribe(y, engine.sample_rate)
    score = asr.wer(LONG_TEXT, hyp)
    print(f"\nWER={score:.3f}\nREF={LONG_TEXT}\nHYP={hyp}")
    assert score <= 0.15, hyp


def test_wer_helper():
    from speech import asr

    assert asr.wer("the cat sat", "the cat sat") == 0.0
    assert asr.wer("the cat sat", "the cat") == pytest.approx(1 / 3)
    assert asr.wer("the cat sat", "a cat sat on") == pytest.approx(2 / 3)
    assert asr.wer("It costs $5.", "it costs five dollars") == 0.0
    assert asr.wer("at 9:30 am", "at 930 AM") == 0.0
