"""A fine-tuned custom voice: the stock Piper voice with a trained ``VoiceModel`` on top.

The primary artefact is one adapter file (``VoiceModel.save``, a few hundred kB) made by
``speech.finetune.fine_tune``; the Piper voice underneath is the packaged one. The adapter
records the spec id of the base voice it was trained on (``stats["base_spec"]``) and ``load``
refuses to put it on any other, since the mapping is only valid for the renderings it saw.

Synthesis: Piper renders the text at the requested speed (native, emotion's rate included)
with no post-processing, the adapter converts that to the talent's voice, and then the stock
engine's own post-processing applies the emotion profile (pitch, F0 range, breath, tilt,
effort), the requested ``pitch`` (TD-PSOLA) and ``volume``. Doing the emotion and pitch after
the conversion keeps them as requested: the adapter maps F0 to the talent's mean, which would
undo a shift applied before it, and it is only trained on neutral renderings.

Each instance owns its Piper session and adapter; nothing is kept in module state, so engines of
different adapters coexist in one ``EngineCache``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from speech.engines.artefacts import sha256_file
from speech.engines.base import (
    Engine,
    EngineCapabilities,
    ModelVersionSpec,
    SynthesisControls,
    validate_controls,
)

log = logging.getLogger(__name__)

ENGINE_NAME = "piper-adapted"


class AdapterMismatchError(ValueError):
    """The adapter was trained on another base voice than the one it would be loaded on."""


def adapted_spec(path: str | Path, version: str) -> ModelVersionSpec:
    """Spec of a local adapter file (the checksum is computed), for registering a version."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no adapter file at {p}")
    return ModelVersionSpec(ENGINE_NAME, str(version), sha256_file(p), artefact_path=str(p))


class AdaptedPiperEngine(Engine):
    name = ENGINE_NAME
    artefact_companions = ()  # the adapter is one file; the base voice is packaged

    def __init__(
        self,
        threads: int = 1,
        use_gpu: bool | None = None,
        deterministic: bool = False,
        noise_scale: float | None = None,
        noise_w: float | None = None,
        output_gain_db: float = 2.0,
        device: str | None = None,
    ):
        """Piper's arguments (see ``PiperEngine``) plus ``device``, the torch device of the
        adapter (None: CUDA when present)."""
        from speech.engines.piper_engine import PiperEngine

        self.device = device
        self._base = PiperEngine(
            threads=threads,
            use_gpu=use_gpu,
            deterministic=deterministic,
            noise_scale=noise_scale,
            noise_w=noise_w,
            output_gain_db=output_gain_db,
        )
        self._model = None
        self._spec: ModelVersionSpec | None = None
        self._caps: EngineCapabilities | None = None

    # -------------------------------------------------------------- lifecycle

    def load(self, spec: ModelVersionSpec | None = None) -> ModelVersionSpec:
        from speech.engines import piper_engine
        from speech.voice_model import VoiceModel

        if spec is None:
            raise ValueError(f"{ENGINE_NAME} needs the spec of an adapter artefact")
        if spec.engine != ENGINE_NAME:
            raise ValueError(f"spec is for engine {spec.engine!r}, not {ENGINE_NAME!r}")
        if not spec.artefact_path:
            # A remote artefact is fetched by ArtefactCache first; never fall back to stock.
            raise ValueError(f"{spec.id}: adapter not fetched to a local file (use ArtefactCache)")
        path = Path(spec.artefact_path)
        if not path.is_file():
            raise FileNotFoundError(f"{spec.id}: no adapter file at {path}")
        checksum = sha256_file(path)
        if not spec.artefact_checksum:
            raise ValueError(f"{spec.id}: an adapter spec needs its sha256 checksum")
        if spec.artefact_checksum != checksum:
            raise ValueError(
                f"checksum mismatch for {path.name}: expected {spec.artefact_checksum[:12]}, "
                f"found {checksum[:12]}"
            )
        model = VoiceModel.load(path, device=self.device)
        trained_on = model.stats.get("base_spec")
        stock = piper_engine.default_spec()
        if not trained_on:
            raise AdapterMismatchError(
                f"{spec.id}: the adapter does not record the base voice it was trained on"
            )
        if trained_on != stock.id:
            raise AdapterMismatchError(
                f"{spec.id}: the adapter was trained on base voice {trained_on}, but the "
                f"packaged base voice is {stock.id}; fine-tune it again on this base"
            )
        base_spec = self._base.load(stock)
        if model.config.sample_rate != self._base.sample_rate:
            log.info(
                "%s: adapter at %d Hz on a %d Hz base; audio is resampled",
                spec.id,
                model.config.sample_rate,
                self._base.sample_rate,
            )
        model.module()  # build the torch mapping now, not on the first request
        self._model = model
        self._spec = ModelVersionSpec(ENGINE_NAME, spec.version, checksum, str(path))
        base_caps = self._base.capabilities
        self._caps = EngineCapabilities(
            sample_rate=base_caps.sample_rate,
            emotions=base_caps.emotions,
            native_controls=base_caps.native_controls,
            streaming=base_caps.streaming,
            fine_tune=True,
            emotion_method=base_caps.emotion_method,
        )
        log.info("loaded %s on %s (method %s)", self._spec.id, base_spec.id, model.config.method)
        return self._spec

    def close(self) -> None:
        self._base.close()
        self._model = None

    def _require(self):
        if self._model is None:
            raise RuntimeError("engine not loaded; call load() first")
        return self._model

    @property
    def spec(self) -> ModelVersionSpec:
        self._require()
        return self._spec

    @property
    def base_spec(self) -> ModelVersionSpec:
        self._require()
        return self._base.spec

    @property
    def sample_rate(self) -> int:
        self._require()
        return self._base.sample_rate

    @property
    def capabilities(self) -> EngineCapabilities:
        self._require()
        return self._caps

    @property
    def adapter(self):
        """The loaded ``VoiceModel`` (read-only use)."""
        return self._require()

    # -------------------------------------------------------------- synthesis

    def synthesize(self, text_chunk: str, controls: SynthesisControls | None = None) -> np.ndarray:
        from speech.engines.piper_engine import EMOTION_PROFILES

        model = self._require()
        controls = validate_controls(controls or SynthesisControls(), self._caps)
        prof = EMOTION_PROFILES[controls.emotion].scaled(controls.intensity)
        sr = self._base.sample_rate
        raw = self._base.render(text_chunk, controls.speed * prof.rate)
        if raw.size == 0:
            return raw
        converted = model.convert(raw, sr)
        return self._base.postprocess(converted, sr, controls, prof)
