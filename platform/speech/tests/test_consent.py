"""Consent statements and their verification, on real synthetic talents (no mocks)."""

from __future__ import annotations

import io
import itertools
import json
import random
from datetime import date

import numpy as np
import pytest
import soundfile as sf

from speech import asr, audio, consent, speaker
from speech.testing import talents as T
from speech.watermark.builtin import BuiltinWatermark

SR = T.SAMPLE_RATE
TEMPLATE = (
    "I, {talent}, am aware that recordings of my voice will be used by {company} to create a "
    "synthetic version of my voice. Challenge: {challenge}."
)
NAME, COMPANY, CHALLENGE = "Dana Fischer", "Acme Limited", "maple seven river two"
KEY = b"consent-test-key-0123456789abcdef"


def recorded(x: np.ndarray, pad_s: float = 0.6, seed: int = 0) -> np.ndarray:
    """Like a real take: some room tone (-70 dBFS) before and after the speech.

    (Synthetic clips start and end on the first and last phoneme; ``quality``'s SNR estimate
    then has only the pauses between words as "noise" and reads ~15 dB on clean speech.)"""
    n = int(pad_s * SR)
    y = np.concatenate(
        [np.zeros(n, np.float32), np.asarray(x, np.float32), np.zeros(n, np.float32)]
    )
    return (y + np.random.default_rng(seed).normal(0, 10 ** (-70 / 20), len(y))).astype(np.float32)


def wav(x: np.ndarray, sr: int = SR) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, np.asarray(x, dtype=np.float32), sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def statement(challenge: str = CHALLENGE) -> str:
    return consent.render_statement(TEMPLATE, talent=NAME, company=COMPANY, challenge=challenge)


# ----------------------------------------------------------------- statements (fast)


def test_statement_renders_like_the_talents_consent_sentence():
    assert statement() == T.CONSENT_SENTENCES[0]
    text = consent.render_statement(
        "{talent} for {company} ({purpose}), {date}: {challenge}.",
        talent="  Dana   Fischer ",
        company="Acme",
        purpose="ads",
        date=date(2026, 12, 2),
        challenge="x",
        unused="ignored",
    )
    assert text == "Dana Fischer for Acme (ads), 2 December 2026: x."
    assert (
        consent.render_statement(
            "{{{talent}}} {company} {challenge}", talent="a", company="b", challenge="c"
        )
        == "{a} b c"
    )


@pytest.mark.parametrize(
    "template, code",
    [
        ("{talent} {company} {challenge} {salary}", "bad_template"),
        ("{talent} {company}", "bad_template"),  # no challenge
        ("{talent.__class__} {company} {challenge}", "bad_template"),
        ("{talent!r} {company} {challenge}", "bad_template"),
        ("{talent:>20} {company} {challenge}", "bad_template"),
        ("{0} {talent} {company} {challenge}", "bad_template"),
        ("{talent {company} {challenge}", "bad_template"),
        ("{talent} {company} {challenge} {date}", "missing_field"),
    ],
)
def test_bad_templates_are_refused(template, code):
    with pytest.raises(consent.ConsentError) as err:
        consent.render_statement(template, talent="a", company="b", challenge="c")
    assert err.value.code == code


def test_challenge_format_and_randomness():
    c = consent.make_challenge(random.Random(1))
    words = c.split()
    assert len(words) == 5
    assert words[1] in consent.DIGIT_WORDS and words[3] in consent.DIGIT_WORDS
    assert {words[0], words[2], words[4]} <= set(consent.CHALLENGE_WORDS)
    assert consent.make_challenge(random.Random(1)) == c
    assert consent.make_challenge(words=2, digits=2).count(" ") == 3
    assert len({consent.make_challenge() for _ in range(50)}) == 50  # SystemRandom
    with pytest.raises(ValueError):
        consent.make_challenge(words=0, digits=0)


def test_challenge_words_cannot_be_mistaken_for_each_other():
    vocab = consent.CHALLENGE_WORDS + consent.DIGIT_WORDS
    assert len(set(vocab)) == len(vocab)
    for a, b in itertools.combinations(vocab, 2):
        assert asr.word_similarity(a, b) < asr.MIN_WORD_SIMILARITY, (a, b)
    # every word survives the ASR normalisation unchanged
    assert all(asr.normalize_for_wer(w) == [w] for w in vocab)


@pytest.mark.parametrize(
    "phrase, transcript, found",
    [
        ("Dana Fischer", "I, Dana Fisher, am aware", True),
        ("maple seven river two", "Challenge, Maple 7 River 2.", True),
        ("maple seven river two", "maple seven, uh, river to", True),
        ("copper four lantern nine", "copper for lantern 9", True),
        ("maple seven river two", "maple seven two", False),
        ("maple seven river two", "river two maple seven", False),
        ("maple seven river two", "maple seven river three", False),
        ("Acme Limited", "used by acne limited", True),
        ("Acme Limited", "used by a committed", False),
        ("Dana Fischer", "I am aware", False),
    ],
)
def test_find_phrase(phrase, transcript, found):
    ok, score, matched = asr.find_phrase(phrase, transcript)
    assert ok is found
    assert (score >= asr.MIN_WORD_SIMILARITY) if found else (matched == "")


# ----------------------------------------------------------------- verification (real models)


@pytest.fixture(scope="module")
def dev():
    return T.by_name("dev")


@pytest.fixture(scope="module")
def training(dev):
    return [consent.embed_recording(T.render(dev, s), SR) for s in T.TRAIN_SENTENCES[:5]]


@pytest.fixture(scope="module")
def genuine_audio(dev):
    return recorded(T.render(dev, statement()))


def detector(x, sr):
    return BuiltinWatermark().detect(x, sr, {"k1": KEY}).verdict == "watermarked"


def verify(data, training, **kw):
    kw.setdefault("challenge", CHALLENGE)
    kw.setdefault("statement", statement(kw["challenge"]))
    return consent.verify_consent(
        data, talent_name=NAME, company=COMPANY, training_embeddings=training, **kw
    )


@pytest.mark.slow
def test_genuine_consent_verifies(genuine_audio, training):
    data = wav(genuine_audio)
    ava = consent.embed_recording(T.render(T.by_name("ava"), T.TRAIN_SENTENCES[0]), SR)
    r = verify(
        data,
        training,
        other_talents={"talent-ava": ava},
        stock_embedding=consent.embed_recording(T.stock(T.TRAIN_SENTENCES[5]), SR),
        watermark_detector=detector,
    )
    assert r.passed, r.reasons
    assert r.reasons == [] and r.codes == []
    names = [c.name for c in r.checks]
    assert names == [
        "decode",
        "audio",
        "watermark",
        "statement",
        "challenge",
        "talent_name",
        "company",
        "speaker",
        "training_speakers",
        "duplicate_speaker",
        "stock_voice",
    ]
    assert r.check("speaker").score >= speaker.VERIFY_THRESHOLD
    assert r.check("statement").score <= consent.MAX_STATEMENT_WER
    assert r.embedding.shape == (speaker.EMBEDDING_DIM,)
    d = r.to_dict()
    json.dumps(d)
    assert "embedding" not in d and d["passed"] is True
    ev = d["evidence"]
    assert ev["audio_sha256"] == r.audio_sha256 == __import__("hashlib").sha256(data).hexdigest()
    assert ev["transcript"] and ev["models"]["asr"].startswith("faster-whisper")
    assert ev["thresholds"]["speaker"] == speaker.VERIFY_THRESHOLD
    assert ev["started_at"] <= ev["finished_at"]
    assert len(ev["scores"]["training_single"]) == 5


@pytest.mark.slow
def test_same_voice_under_another_talent_is_flagged(genuine_audio, training):
    # any supported format: this one arrives as FLAC
    data = audio.encode(genuine_audio, SR, "flac")
    r = verify(data, training, other_talents={"talent-7": speaker.mean_embedding(training)})
    assert r.codes == ["duplicate_speaker"]
    assert r.check("duplicate_speaker").details["talents"] == ["talent-7"]
    assert "talent-7" in r.reasons[0]["message"]


@pytest.mark.slow
def test_another_speaker_is_rejected(training):
    r = verify(wav(recorded(T.render(T.by_name("ava"), statement()))), training)
    assert "speaker_mismatch" in r.codes and "training_speaker_mismatch" in r.codes
    bad = r.check("training_speakers").details["indices"]
    assert bad == [0, 1, 2, 3, 4]
    assert not r.passed


@pytest.mark.slow
def test_wrong_statement_is_rejected(dev, training):
    r = verify(wav(recorded(T.render(dev, T.CONSENT_SENTENCES[1]))), training)
    assert "statement_mismatch" in r.codes and "challenge_missing" in r.codes
    assert r.check("statement").score > consent.MAX_STATEMENT_WER
    assert "word error rate" in r.check("statement").message
    assert r.check("speaker").passed


@pytest.mark.slow
def test_statement_without_the_challenge_is_rejected(dev, training):
    spoken = statement().split(" Challenge:")[0] + "."
    r = verify(wav(recorded(T.render(dev, spoken))), training)
    assert r.codes == ["challenge_missing"]
    assert "challenge" in r.reasons[0]["message"]


@pytest.mark.slow
def test_wrong_challenge_is_rejected(dev, training):
    r = verify(wav(recorded(T.render(dev, statement("copper four lantern nine")))), training)
    assert r.codes == ["challenge_missing"]


@pytest.mark.slow
def test_names_are_not_hallucinated_by_the_biased_asr(dev, training):
    spoken = statement().replace("I, Dana Fischer, am", "I am")
    r = verify(wav(recorded(T.render(dev, spoken))), training)
    assert "talent_name_missing" in r.codes
    assert r.check("company").passed


@pytest.mark.slow
def test_watermarked_audio_is_refused(genuine_audio, training):
    marked = BuiltinWatermark().embed(genuine_audio, SR, b"\x01\x02\x03\x04\x05", KEY)
    r = verify(wav(marked), training, watermark_detector=detector)
    assert "watermarked" in r.codes


@pytest.mark.slow
def test_stock_voice_is_flagged():
    stock_train = [consent.embed_recording(T.stock(s), SR) for s in T.TRAIN_SENTENCES[:3]]
    r = verify(
        wav(recorded(T.stock(statement()))),
        stock_train,
        stock_embedding=speaker.mean_embedding(stock_train),
    )
    assert r.codes == ["stock_voice"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "data, code",
    [
        (b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(256)) * 8, "undecodable"),
        (bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)), "undecodable"),
        (wav(np.zeros(5 * SR, dtype=np.float32)), "silent"),
        (wav(np.random.default_rng(1).normal(0, 0.05, 5 * SR)), "no_speech"),
    ],
)
def test_unusable_audio_is_refused_before_the_models(data, code):
    r = verify(data, [])
    assert code in r.codes
    assert not r.passed
    assert r.check("statement") is None and r.check("speaker") is None
    json.dumps(r.to_dict())


@pytest.mark.slow
def test_no_training_audio(genuine_audio):
    r = verify(wav(genuine_audio), [])
    assert r.codes == ["insufficient_training_audio"]


def test_oversized_upload_is_refused_without_decoding():
    r = verify(b"\0" * 2048, [], max_bytes=1024)
    assert r.codes == ["file_too_large"]
