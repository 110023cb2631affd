"""docs/api.md states the limits the code defines once (speech.audio, speech.engines.base,
speech.text): when a limit changes, this test says which line of the docs to update."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from speech.audio import FORMATS, VALID_SAMPLE_RATES
from speech.engines.base import CONTROL_RANGES, EMOTIONS
from speech.text import DEFAULT_MAX_LENGTH

DOC = (Path(__file__).resolve().parents[1] / "docs" / "api.md").read_text()


def row(field: str) -> str:
    return next(line for line in DOC.splitlines() if line.startswith(f"| `{field}` |"))


def numbers(text: str) -> set[float]:
    return {float(n) for n in re.findall(r"[-+]?\d+(?:\.\d+)?", text.replace("\u2212", "-"))}


def test_formats_sample_rates_and_emotions():
    assert all(f"`{fmt}`" in row("format") for fmt in FORMATS)
    assert ", ".join(map(str, VALID_SAMPLE_RATES)) in row("sample_rate")
    assert all(f"`{emotion}`" in row("emotion") for emotion in EMOTIONS)


@pytest.mark.parametrize("control", sorted(set(CONTROL_RANGES) - {"intensity"}))
def test_control_ranges(control):
    assert set(CONTROL_RANGES[control]) <= numbers(row(control))


def test_intensity_and_text_length():
    assert set(CONTROL_RANGES["intensity"]) <= numbers(row("emotion").split("intensity")[1])
    assert f"{DEFAULT_MAX_LENGTH:,}" in row("text")
