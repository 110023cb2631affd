"""Engine interface shared by every synthesis backend.

Framework-free on purpose: the Django layer, Celery workers and benchmarks all
import this without pulling in settings.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Protocol

import numpy as np

EMOTIONS: tuple[str, ...] = ("neutral", "happy", "sad", "angry", "calm", "excited", "whispery")

# (min, max) inclusive for every numeric control.
CONTROL_RANGES: dict[str, tuple[float, float]] = {
    "speed": (0.5, 2.0),
    "pitch": (-6.0, 6.0),
    "volume": (0.0, 2.0),
    "intensity": (0.0, 1.0),
}


class ControlError(ValueError):
    """A synthesis control is unknown, of the wrong type, or out of range."""

    def __init__(self, field: str, message: str, allowed: Any = None):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.allowed = allowed

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field, "message": self.message, "allowed": self.allowed}


@dataclass(frozen=True)
class ModelVersionSpec:
    """Identifies one immutable model artefact.

    ``artefact_path`` (a local file) and ``artefact_key`` (an object-storage key, fetched to a
    local path by ``ArtefactCache``) are locators only; identity is engine + version + checksum.
    """

    engine: str
    version: str
    artefact_checksum: str  # sha256 hex of the primary artefact (e.g. the .onnx file)
    artefact_path: str | None = field(default=None, compare=False)
    artefact_key: str | None = field(default=None, compare=False)

    @property
    def id(self) -> str:
        return f"{self.engine}:{self.version}@{self.artefact_checksum[:12]}"


@dataclass(frozen=True)
class SynthesisControls:
    speed: float = 1.0  # rate multiplier, 0.5..2.0
    pitch: float = 0.0  # semitones, -6..+6
    volume: float = 1.0  # linear gain, 0..2
    emotion: str = "neutral"
    intensity: float = 0.5  # emotion strength, 0..1

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SynthesisControls:
        """Build from untrusted input; unknown keys are an error, not ignored."""
        names = [f.name for f in fields(cls)]
        for key in data:
            if key not in names:
                raise ControlError(key, "unknown control", names)
        controls = cls(**dict(data))
        validate_controls(controls)
        return controls

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def with_overrides(self, rate: float = 1.0, pitch_st: float = 0.0) -> SynthesisControls:
        """Apply SSML prosody (relative) on top of request controls, then re-validate.

        Out-of-range results raise instead of being clamped so the caller learns why.
        """
        if rate == 1.0 and pitch_st == 0.0:
            return self
        out = replace(self, speed=self.speed * rate, pitch=self.pitch + pitch_st)
        validate_controls(out)
        return out


@dataclass(frozen=True)
class EngineCapabilities:
    sample_rate: int
    emotions: tuple[str, ...]
    # Controls the model realises itself; the rest are applied by DSP post-processing.
    native_controls: frozenset[str]
    streaming: bool  # can yield audio per chunk before the whole text is done
    fine_tune: bool
    emotion_method: str = "none"  # "native" | "prosody" | "none"


def _check_number(name: str, value: Any) -> float:
    lo, hi = CONTROL_RANGES[name]
    allowed = {"min": lo, "max": hi}
    # bool is an int subclass; "true" as a speed is a client bug, not 1.0.
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise ControlError(name, f"must be a number, got {type(value).__name__}", allowed)
    v = float(value)
    if not math.isfinite(v):
        raise ControlError(name, "must be finite", allowed)
    if not lo <= v <= hi:
        raise ControlError(name, f"{v:g} is out of range [{lo:g}, {hi:g}]", allowed)
    return v


def validate_controls(
    controls: SynthesisControls, capabilities: EngineCapabilities | None = None
) -> SynthesisControls:
    """Raise ControlError for anything the engine cannot honour exactly."""
    for name in CONTROL_RANGES:
        _check_number(name, getattr(controls, name))
    supported = capabilities.emotions if capabilities is not None else EMOTIONS
    if not isinstance(controls.emotion, str) or controls.emotion not in supported:
        raise ControlError("emotion", f"unsupported emotion {controls.emotion!r}", list(supported))
    return controls


class Engine(ABC):
    """One loaded voice model. Not thread-safe: use one instance per worker thread."""

    name: str = "abstract"
    # Suffixes of files that travel beside the primary artefact (fetched with it).
    artefact_companions: tuple[str, ...] = ()

    @abstractmethod
    def load(self, spec: ModelVersionSpec | None = None) -> ModelVersionSpec:
        """Load the artefact (default voice when spec is None) and return its exact spec.

        Must raise if the artefact's checksum does not match ``spec.artefact_checksum``.
        """

    @property
    @abstractmethod
    def spec(self) -> ModelVersionSpec: ...

    @property
    @abstractmethod
    def sample_rate(self) -> int: ...

    @property
    @abstractmethod
    def capabilities(self) -> EngineCapabilities: ...

    @abstractmethod
    def synthesize(self, text_chunk: str, controls: SynthesisControls | None = None) -> np.ndarray:
        """Render one normalised chunk to float32 mono in [-1, 1] at ``sample_rate``."""

    def fine_tune(self, *args: Any, **kwargs: Any) -> ModelVersionSpec:
        raise NotImplementedError(f"{self.name} does not support fine-tuning")

    def close(self) -> None:  # noqa: B027 - optional hook, default is a no-op
        """Release model memory / sessions."""

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ChunkLike(Protocol):
    text: str
    rate: float
    pitch_st: float
    pause_after_ms: int


def iter_synthesis(
    engine: Engine, chunks: Iterable[ChunkLike], controls: SynthesisControls
) -> Iterator[tuple[np.ndarray, int]]:
    """Yield (audio, pause_after_ms) per chunk; empty text yields a pure pause.

    Kept separate from joining so streaming callers can encode as they go.
    """
    validate_controls(controls, engine.capabilities)
    for chunk in chunks:
        if chunk.text.strip():
            audio = engine.synthesize(
                chunk.text, controls.with_overrides(chunk.rate, chunk.pitch_st)
            )
        else:
            audio = np.zeros(0, dtype=np.float32)
        yield audio, int(chunk.pause_after_ms)


def synthesize_chunks(
    engine: Engine,
    chunks: Iterable[ChunkLike],
    controls: SynthesisControls,
    crossfade_ms: float = 30.0,
) -> np.ndarray:
    """Render all chunks and join them with an equal-power crossfade."""
    from speech import dsp  # local: keeps the interface importable without scipy

    parts, pauses = [], []
    for audio, pause in iter_synthesis(engine, chunks, controls):
        parts.append(audio)
        pauses.append(pause)
    return dsp.crossfade_join(parts, engine.sample_rate, crossfade_ms, pauses)
