"""A test-only engine that breaks on purpose, to prove the guardrails catch a bad candidate.

Engine name ``faulty``; `speech.engines.cache.engine_class` offers it only when the process
has ``TIMBRE_ENABLE_TEST_ENGINES=1``. It wraps the packaged Piper voice (its artefact checksum
is the stock voice's) and the spec's version string picks the fault:

- ``healthy``: the stock voice, unchanged;
- ``errors-<share>``: raises on about that share of texts, deterministic per text (the
  engine cache's sanity text is exempt, so the version still loads);
- ``slow-<seconds>``: sleeps that long per chunk before speaking;
- ``garbled``: noise of speech-like length and loudness instead of speech.
"""

from __future__ import annotations

import hashlib
import time

import numpy as np

from speech.engines.base import ModelVersionSpec, SynthesisControls
from speech.engines.piper_engine import PiperEngine, default_spec

ENGINE_NAME = "faulty"
ENABLE_ENV = "TIMBRE_ENABLE_TEST_ENGINES"


class InjectedFault(RuntimeError):
    pass


def spec(fault: str) -> ModelVersionSpec:
    """The spec of a faulty version (e.g. ``"errors-0.6"``) over the packaged voice."""
    return ModelVersionSpec(ENGINE_NAME, fault, default_spec().artefact_checksum)


def _share(text: str) -> float:
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


class FaultyEngine(PiperEngine):
    name = ENGINE_NAME

    def load(self, spec: ModelVersionSpec | None = None) -> ModelVersionSpec:
        fault = spec.version if spec is not None else "healthy"
        kind, _, amount = fault.partition("-")
        if kind not in ("healthy", "errors", "slow", "garbled"):
            raise ValueError(f"unknown fault {fault!r}")
        self.fault, self.amount = kind, float(amount or 0)
        stock = default_spec()
        loaded = super().load(stock)
        self._spec = ModelVersionSpec(
            ENGINE_NAME, fault, loaded.artefact_checksum, stock.artefact_path
        )
        return self._spec

    def synthesize(self, text_chunk: str, controls: SynthesisControls | None = None) -> np.ndarray:
        from speech.engines.cache import SANITY_TEXT

        if (
            self.fault == "errors"
            and text_chunk != SANITY_TEXT
            and _share(text_chunk) < self.amount
        ):
            raise InjectedFault(f"injected fault ({self.amount:g} of texts)")
        if self.fault == "slow":
            time.sleep(self.amount)
        audio = super().synthesize(text_chunk, controls)
        if self.fault == "garbled" and audio.size:
            seed = int(hashlib.sha256(text_chunk.encode()).hexdigest()[:8], 16)
            level = float(np.sqrt(np.mean(audio.astype(np.float64) ** 2))) or 0.05
            noise = np.random.default_rng(seed).standard_normal(audio.size) * level
            return np.clip(noise, -1.0, 1.0).astype(np.float32)
        return audio
