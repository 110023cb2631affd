"""Voice adaptation: the one copy of the model code that fine-tuning and synthesis share.

Parallel voice conversion on top of the stock Piper voice, as facts.md measured it and with its
warning heeded (a high-capacity network garbles the words):

1. **Features** (``extract``): WORLD (``pyworld``) analysis at 5 ms frames: F0 (DIO + StoneMask),
   the spectral envelope coded to ``n_mcep`` mel-cepstral coefficients
   (``pyworld.code_spectral_envelope``) and the aperiodicity.
2. **Alignment** (``align``): DTW (librosa) between the Piper rendering of a transcript and the
   talent's recording of it, on the cepstra without energy; frames where either side is silence
   are dropped. After the first training round the pairs are re-aligned with the converted
   source, which aligns better, and training continues.
3. **Spectral mapping** (``SpectralMapping``, torch): a *residual* map of the cepstrum
   ``y = x + sum_k g_k(x) (A_k [x_{t-c}..x_{t+c}] + b_k)``: ``n_experts`` linear maps (a
   mixture-of-linear-experts, the classic GMM-VC shape; 1 expert = one linear map), each of
   rank ``rank``, started at the identity and trained with an L2 pull towards it. Frequency
   warping (formant shift) is a linear map of the cepstrum, so this low capacity is enough for
   timbre and cannot invent phonemes. Energy (c0) is only offset, never mapped.
4. **Prosody**: log-F0 mean and variance mapped to the talent's; a speaking-rate ratio (the
   talent's speech frames over Piper's on the same transcripts) applied by resampling the frame
   sequence.
5. **Post-filter**: the converted cepstra's global variance (per utterance, speech frames) is
   pulled towards the talent's (``gv_weight``), which counters the over-smoothing of any
   regression, then a short moving average over time (``smooth_frames``).

``convert`` applies 1-5 to Piper output and resynthesises with WORLD, before watermarking.
``VoiceModel.save``/``load`` use one file of tensors and plain values (``torch.load`` with
``weights_only=True``: no pickled objects). Training is full-batch Adam, deterministic for a
seed on a given device; CUDA is used when present.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from speech import dsp

FORMAT = "timbre-voice-adapter/1"
SAMPLE_RATE = 22050


@dataclass(frozen=True)
class AdapterConfig:
    sample_rate: int = SAMPLE_RATE
    frame_period_ms: float = 5.0
    n_mcep: int = 40
    f0_floor: float = 55.0
    f0_ceil: float = 600.0
    context: int = 1  # frames either side fed to the mapping
    rank: int = 0  # 0: full-rank linear maps; r > 0: rank-r residual maps
    n_experts: int = 1
    l2_to_identity: float = 1e-3
    lr: float = 0.01
    steps: int = 400
    realign_every: int = 200  # re-run DTW with the converted source every N steps (0: never)
    gv_weight: float = 1.0  # 0: no global-variance post-filter, 1: full
    smooth_frames: int = 3
    silence_db: float = -35.0  # frames this far below the utterance's loudest are silence
    method: str = "filter"  # convert(): "filter" (Piper's waveform, filtered) or "world"
    seed: int = 0


@dataclass
class Features:
    f0: np.ndarray  # (T,), 0 where unvoiced
    mcep: np.ndarray  # (T, n_mcep)
    ap: np.ndarray  # (T, fft_size // 2 + 1)
    sr: int
    fft_size: int

    @property
    def voiced(self) -> np.ndarray:
        return self.f0 > 0

    def speech(self, silence_db: float) -> np.ndarray:
        return _speech_frames(self.mcep, silence_db)


@dataclass
class Pair:
    """A training pair: Piper's rendering of a transcript and the talent saying it."""

    base: np.ndarray
    target: np.ndarray
    sr: int


def _speech_frames(mcep: np.ndarray, silence_db: float) -> np.ndarray:
    # c0 of pyworld's coded envelope is a log-power (natural log of amplitude, per dim scale);
    # use the frame energy of the decoded envelope proxy: c0 relative to the loudest frames.
    c0 = mcep[:, 0]
    ref = np.percentile(c0, 95) if len(c0) else 0.0
    return c0 > ref + silence_db / (20.0 / math.log(10.0))


# --------------------------------------------------------------------------- features


def extract(samples: np.ndarray, sr: int, cfg: AdapterConfig | None = None) -> Features:
    import pyworld as pw

    cfg = cfg or AdapterConfig()
    x = dsp.resample(np.asarray(samples, dtype=np.float32).reshape(-1), sr, cfg.sample_rate)
    x = x.astype(np.float64)
    fs = cfg.sample_rate
    f0, t = pw.dio(
        x, fs, f0_floor=cfg.f0_floor, f0_ceil=cfg.f0_ceil, frame_period=cfg.frame_period_ms
    )
    f0 = pw.stonemask(x, f0, t, fs)
    sp = pw.cheaptrick(x, f0, t, fs)
    ap = pw.d4c(x, f0, t, fs)
    mcep = pw.code_spectral_envelope(sp, fs, cfg.n_mcep)
    return Features(f0=f0, mcep=mcep, ap=ap, sr=fs, fft_size=pw.get_cheaptrick_fft_size(fs))


def synthesize(
    f0: np.ndarray, mcep: np.ndarray, ap: np.ndarray, sr: int, fft_size: int, frame_period_ms: float
) -> np.ndarray:
    import pyworld as pw

    sp = pw.decode_spectral_envelope(np.ascontiguousarray(mcep, dtype=np.float64), sr, fft_size)
    y = pw.synthesize(
        np.ascontiguousarray(f0, dtype=np.float64),
        sp,
        np.ascontiguousarray(ap, dtype=np.float64),
        sr,
        frame_period_ms,
    )
    return y.astype(np.float32)


def align(src: np.ndarray, tgt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DTW path (source frame indices, target frame indices) on cepstra without c0."""
    import librosa

    _, wp = librosa.sequence.dtw(X=src[:, 1:].T, Y=tgt[:, 1:].T, metric="euclidean")
    wp = wp[::-1]
    return wp[:, 0].astype(np.int64), wp[:, 1].astype(np.int64)


def mcd(a: np.ndarray, b: np.ndarray, aligned: bool = False) -> float:
    """Mel-cepstral distortion in dB between two cepstrum sequences (c0 excluded).

    Unless ``aligned``, the sequences are DTW-aligned first. pyworld's coded envelope is a
    natural-log mel cepstrum, so the usual (10 / ln 10) * sqrt(2 * sum d^2) applies."""
    if not aligned:
        i, j = align(a, b)
        a, b = a[i], b[j]
    d = a[:, 1:] - b[:, 1:]
    return float(np.mean(10.0 / math.log(10.0) * np.sqrt(2.0 * np.sum(d * d, axis=1))))


def _context(x: np.ndarray, c: int) -> np.ndarray:
    if c == 0:
        return x
    pad = np.pad(x, ((c, c), (0, 0)), mode="edge")
    return np.concatenate([pad[k : k + len(x)] for k in range(2 * c + 1)], axis=1)


def _smooth(x: np.ndarray, n: int) -> np.ndarray:
    if n <= 1 or len(x) < n:
        return x
    from scipy.ndimage import uniform_filter1d

    return uniform_filter1d(x, size=n, axis=0, mode="nearest")


# ------------------------------------------------------------------------------ model


def _mapping_class():
    import torch
    from torch import nn

    class SpectralMapping(nn.Module):
        """Residual mixture of low-capacity linear maps over a short context window."""

        def __init__(self, dim: int, context: int, rank: int, n_experts: int):
            super().__init__()
            self.dim, self.context, self.rank, self.n_experts = dim, context, rank, n_experts
            width = dim * (2 * context + 1)
            self.register_buffer("mean", torch.zeros(width))
            self.register_buffer("std", torch.ones(width))
            if rank > 0:
                self.down = nn.Parameter(torch.randn(n_experts, width, rank) * 0.01)
                self.up = nn.Parameter(torch.zeros(n_experts, rank, dim))
            else:
                self.weight = nn.Parameter(torch.zeros(n_experts, width, dim))
            self.bias = nn.Parameter(torch.zeros(n_experts, dim))
            self.gate = nn.Linear(width, n_experts) if n_experts > 1 else None

        def delta(self, ctx: torch.Tensor) -> torch.Tensor:
            z = (ctx - self.mean) / self.std
            if self.rank > 0:
                out = torch.einsum("tw,ewr,erd->ted", z, self.down, self.up)
            else:
                out = torch.einsum("tw,ewd->ted", z, self.weight)
            out = out + self.bias
            if self.gate is None:
                return out[:, 0]
            g = torch.softmax(self.gate(z), dim=-1)
            return torch.einsum("te,ted->td", g, out)

        def forward(self, ctx: torch.Tensor) -> torch.Tensor:
            centre = ctx[:, self.context * self.dim : (self.context + 1) * self.dim]
            return centre + self.delta(ctx)

        def penalty(self) -> torch.Tensor:
            p = self.bias.pow(2).mean()
            if self.rank > 0:
                return p + torch.einsum("ewr,erd->ewd", self.down, self.up).pow(2).mean()
            return p + self.weight.pow(2).mean()

    return SpectralMapping


@dataclass
class VoiceModel:
    """A trained adapter: configuration, statistics and the mapping's tensors."""

    config: AdapterConfig
    stats: dict = field(default_factory=dict)  # f0 stats, rate ratio, gv, c0 offset, metrics
    state: dict = field(default_factory=dict)  # name -> torch.Tensor (CPU)
    device: str = "cpu"
    _module: object = None

    # ---------------------------------------------------------------- persistence

    def save(self, path: str | Path) -> None:
        import torch

        payload = {
            "format": FORMAT,
            "config": json.dumps(asdict(self.config), sort_keys=True),
            "stats": json.dumps(self.stats, sort_keys=True),
            "state": {k: v.detach().cpu().contiguous() for k, v in self.state.items()},
        }
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        torch.save(payload, tmp)
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | Path, device: str | None = None) -> VoiceModel:
        import torch

        payload = torch.load(Path(path), map_location="cpu", weights_only=True)
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise ValueError(f"{path} is not a {FORMAT} file")
        cfg = AdapterConfig(**json.loads(payload["config"]))
        return cls(
            config=cfg,
            stats=json.loads(payload["stats"]),
            state=dict(payload["state"]),
            device=device or _default_device(),
        )

    # ------------------------------------------------------------------- mapping

    def module(self):
        import torch

        if self._module is None:
            cfg = self.config
            m = _mapping_class()(cfg.n_mcep - 1, cfg.context, cfg.rank, cfg.n_experts)
            m.load_state_dict({k: torch.as_tensor(v) for k, v in self.state.items()})
            m.eval()
            self._module = m.to(self.device)
        return self._module

    def map_mcep(self, mcep: np.ndarray) -> np.ndarray:
        """Map a (T, n_mcep) cepstrum sequence: c1.. through the network, c0 offset."""
        import torch

        cfg = self.config
        ctx = _context(mcep[:, 1:], cfg.context).astype(np.float32)
        with torch.inference_mode():
            y = self.module()(torch.from_numpy(ctx).to(self.device)).cpu().numpy()
        out = np.empty_like(mcep)
        out[:, 0] = mcep[:, 0] + float(self.stats.get("c0_offset", 0.0))
        out[:, 1:] = y
        return out

    def convert_features(self, feats: Features, retime: bool = True) -> Features:
        cfg, st = self.config, self.stats
        mcep = self.map_mcep(feats.mcep)
        speech = feats.speech(cfg.silence_db)
        gv = np.asarray(st.get("gv", []), dtype=np.float64)
        if cfg.gv_weight > 0 and len(gv) == mcep.shape[1] - 1 and speech.sum() > 10:
            seg = mcep[speech, 1:]
            mu, var = seg.mean(0), seg.var(0) + 1e-10
            scale = np.sqrt(gv / var) ** cfg.gv_weight
            mcep[speech, 1:] = (seg - mu) * scale + mu
        mcep = _smooth(mcep, cfg.smooth_frames)
        f0 = feats.f0.copy()
        v = f0 > 0
        if v.any() and "lf0_mean_src" in st:
            lf0 = np.log(f0[v])
            z = (lf0 - st["lf0_mean_src"]) / max(st["lf0_std_src"], 1e-6)
            f0[v] = np.exp(z * st["lf0_std_tgt"] + st["lf0_mean_tgt"])
        ap = feats.ap
        rate = float(st.get("duration_ratio", 1.0))
        if retime and abs(rate - 1.0) > 0.02:
            f0, mcep, ap = _retime(f0, mcep, ap, rate)
        return Features(f0=f0, mcep=mcep, ap=ap, sr=feats.sr, fft_size=feats.fft_size)

    def convert(self, samples: np.ndarray, sr: int, method: str | None = None) -> np.ndarray:
        """Piper output in, the talent's voice out, at the same sample rate and level.

        ``method="filter"`` (the default, ``config.method``) keeps Piper's own waveform and
        applies the envelope change as a time-varying filter, ``|H| = sqrt(sp_conv / sp_src)``
        in the STFT domain, then maps F0 with TD-PSOLA (formants kept). ``"world"`` resynthesises
        everything with the WORLD vocoder (and applies the rate ratio): simpler, but the vocoder
        itself costs speaker similarity and MOS."""
        x = np.asarray(samples, dtype=np.float32).reshape(-1)
        if len(x) < sr // 50:
            return x.copy()
        method = method or self.config.method
        xr = dsp.resample(x, sr, self.config.sample_rate)
        feats = extract(xr, self.config.sample_rate, self.config)
        out = self.convert_features(feats, retime=method == "world")
        if method == "world":
            y = synthesize(
                out.f0, out.mcep, out.ap, out.sr, out.fft_size, self.config.frame_period_ms
            )
        elif method == "filter":
            y = self._filter(xr, feats, out)
        else:
            raise ValueError(f"unknown conversion method {method!r}")
        y = dsp.resample(y, self.config.sample_rate, sr)
        level_in, level_out = dsp.rms(x), dsp.rms(y)
        if level_out > 0:
            y = dsp.apply_gain(y, sr, level_in / level_out)
        return y

    def _filter(self, x: np.ndarray, src: Features, conv: Features) -> np.ndarray:
        from scipy import signal

        cfg, st = self.config, self.stats
        fs, n_fft = src.sr, src.fft_size
        # log |H| per WORLD frame; c0 is left out (the level is restored afterwards).
        a, b = src.mcep.copy(), conv.mcep.copy()
        b[:, 0] = a[:, 0]
        log_h = 0.5 * (_log_envelope(b, fs, n_fft) - _log_envelope(a, fs, n_fft))
        hop = n_fft // 4
        f, t, z = signal.stft(
            x.astype(np.float64),
            fs,
            nperseg=n_fft,
            noverlap=n_fft - hop,
            nfft=n_fft,
            boundary="even",
            padded=True,
        )
        frames = np.clip(
            np.rint(t * 1000.0 / cfg.frame_period_ms).astype(np.int64), 0, len(log_h) - 1
        )
        z = z * np.exp(log_h[frames].T)
        _, y = signal.istft(z, fs, nperseg=n_fft, noverlap=n_fft - hop, nfft=n_fft, boundary=True)
        y = y[: len(x)].astype(np.float32)
        v = src.f0 > 0
        if v.any() and "lf0_mean_src" in st:
            ref_l = float(np.log(np.median(src.f0[v])))
            rf = st["lf0_std_tgt"] / max(st["lf0_std_src"], 1e-6)
            shift = st["lf0_mean_tgt"] + rf * (ref_l - st["lf0_mean_src"]) - ref_l
            times = np.arange(len(src.f0)) * cfg.frame_period_ms / 1000.0
            y = dsp.psola(
                y,
                fs,
                semitones=12.0 * shift / math.log(2.0),
                range_factor=float(np.clip(rf, 0.5, 2.0)),
                f0_track=(src.f0, times),
            )
        return y


def _log_envelope(mcep: np.ndarray, fs: int, fft_size: int) -> np.ndarray:
    import pyworld as pw

    sp = pw.decode_spectral_envelope(np.ascontiguousarray(mcep, dtype=np.float64), fs, fft_size)
    return np.log(np.maximum(sp, 1e-16))


def _retime(f0, mcep, ap, ratio):
    """Resample the frame sequence to ``ratio`` times its length (nearest frame for F0)."""
    n = len(f0)
    m = max(1, int(round(n * ratio)))
    pos = np.linspace(0, n - 1, m)
    idx = np.rint(pos).astype(np.int64)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, n - 1)
    w = (pos - lo)[:, None]
    return f0[idx], (1 - w) * mcep[lo] + w * mcep[hi], (1 - w) * ap[lo] + w * ap[hi]


def _default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


# ----------------------------------------------------------------------------- training

ProgressCallback = Callable[[int, int, float], None]


def train(
    pairs: Sequence[Pair],
    *,
    config: AdapterConfig | None = None,
    steps: int | None = None,
    device: str | None = None,
    progress_callback: ProgressCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
    feature_callback: Callable[[int, int], None] | None = None,
) -> VoiceModel:
    """Fit an adapter from Piper renderings to the talent's recordings of the same text.

    ``progress_callback(step, total, loss)`` is called every few steps and at the end;
    ``should_stop()`` (a cancelled job) ends training early with what was learnt so far.
    ``feature_callback(done, total)`` is called after each pair's feature extraction (a caller
    that must stop promptly may raise from it)."""
    import torch

    if not pairs:
        raise ValueError("train needs at least one (base, target) pair")
    cfg = config or AdapterConfig()
    if steps is not None:
        cfg = AdapterConfig(**{**asdict(cfg), "steps": int(steps)})
    device = device or _default_device()
    t0 = time.perf_counter()
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)

    src, tgt = [], []
    for k, p in enumerate(pairs, 1):
        src.append(extract(p.base, p.sr, cfg))
        tgt.append(extract(p.target, p.sr, cfg))
        if feature_callback is not None:
            feature_callback(k, len(pairs))
    stats = _prosody_stats(src, tgt, cfg)
    t_feat = time.perf_counter() - t0

    Mapping = _mapping_class()
    dim = cfg.n_mcep - 1
    model = Mapping(dim, cfg.context, cfg.rank, cfg.n_experts)

    def build(convert_src: bool):
        xs, ys = [], []
        for s, t in zip(src, tgt, strict=True):
            sm = s.mcep
            if convert_src:
                with torch.no_grad():
                    ctx = torch.from_numpy(_context(sm[:, 1:], cfg.context).astype(np.float32))
                    conv = model(ctx.to(device)).cpu().numpy()
                key = np.concatenate([sm[:, :1], conv], axis=1)
            else:
                key = sm
            i, j = align(key, t.mcep)
            keep = s.speech(cfg.silence_db)[i] & t.speech(cfg.silence_db)[j]
            xs.append(_context(sm[:, 1:], cfg.context)[i[keep]])
            ys.append(t.mcep[j[keep], 1:])
        return (
            torch.from_numpy(np.concatenate(xs).astype(np.float32)).to(device),
            torch.from_numpy(np.concatenate(ys).astype(np.float32)).to(device),
        )

    x, y = build(False)
    with torch.no_grad():
        model.mean.copy_(x.mean(0).cpu())
        model.std.copy_(x.std(0).cpu() + 1e-3)
    model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    total = cfg.steps
    losses: list[float] = []
    step = 0
    for step in range(1, total + 1):
        if cfg.realign_every and step > 1 and (step - 1) % cfg.realign_every == 0:
            model.eval()
            x, y = build(True)
            model.train()
        opt.zero_grad(set_to_none=True)
        loss = torch.mean((model(x) - y) ** 2)
        (loss + cfg.l2_to_identity * model.penalty()).backward()
        opt.step()
        losses.append(float(loss.detach()))
        if progress_callback and (step % 10 == 0 or step == total):
            progress_callback(step, total, losses[-1])
        if should_stop is not None and step % 10 == 0 and should_stop():
            break

    stats.update(
        train_frames=int(x.shape[0]),
        train_pairs=len(pairs),
        steps_run=step,
        loss_first=losses[0] if losses else None,
        loss_last=losses[-1] if losses else None,
        feature_seconds=round(t_feat, 2),
        train_seconds=round(time.perf_counter() - t0, 2),
        device=str(device),
    )
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    vm = VoiceModel(config=cfg, stats=stats, state=state, device=device)
    vm.stats["gv"] = _target_gv(tgt, cfg)
    return vm


def _prosody_stats(src: list[Features], tgt: list[Features], cfg: AdapterConfig) -> dict:
    def lf0(fs):
        v = np.concatenate([np.log(f.f0[f.voiced]) for f in fs if f.voiced.any()] or [[0.0]])
        return float(np.mean(v)), float(np.std(v))

    ms, ss = lf0(src)
    mt, st = lf0(tgt)
    n_src = sum(int(f.speech(cfg.silence_db).sum()) for f in src)
    n_tgt = sum(int(f.speech(cfg.silence_db).sum()) for f in tgt)
    c0_src = np.concatenate([f.mcep[f.speech(cfg.silence_db), 0] for f in src])
    c0_tgt = np.concatenate([f.mcep[f.speech(cfg.silence_db), 0] for f in tgt])
    return {
        "lf0_mean_src": ms,
        "lf0_std_src": ss,
        "lf0_mean_tgt": mt,
        "lf0_std_tgt": st,
        "duration_ratio": float(np.clip(n_tgt / max(n_src, 1), 0.7, 1.4)),
        "c0_offset": float(np.mean(c0_tgt) - np.mean(c0_src)),
    }


def _target_gv(tgt: list[Features], cfg: AdapterConfig) -> list[float]:
    per = [
        f.mcep[f.speech(cfg.silence_db), 1:].var(0)
        for f in tgt
        if f.speech(cfg.silence_db).sum() > 10
    ]
    return np.mean(per, axis=0).tolist() if per else []


def choose_method(
    model: VoiceModel,
    base_clips: Sequence[np.ndarray],
    enrolment: np.ndarray,
    sr: int,
    methods: Sequence[str] = ("filter", "world"),
    device: str | None = None,
    transcripts: Sequence[str] | None = None,
    wer_margin: float = 0.10,
    similarity_tie: float = 0.02,
    asr_threads: int = 0,
    check: Callable[[], None] | None = None,
) -> tuple[str, dict[str, float]]:
    """Pick the conversion method for this voice on validation sentences (``base_clips``,
    Piper renderings of them) and set it in ``model.config``.

    Similarity is the mean cosine of the converted clips to the ``enrolment`` embedding. With
    ``transcripts`` (one per clip), intelligibility counts too: the method is the most similar
    one among those whose word error rate (faster-whisper) is within ``wer_margin`` of the best
    method's, and of methods within ``similarity_tie`` of that similarity the one with the lower
    WER (the WERs are kept in ``model.stats["method_wer"]``). On 2-3 sentences one word is
    3-10 WER points, hence a margin of 10 points rather than less. ``check()`` is called
    before each clip (a cancelled job raises from it). Without them, similarity
    alone decides, which once chose ``world`` for a talent
    at a 14-point WER cost (docs/benchmarks.md).

    Filtering Piper's waveform wins where the talent is close to Piper's excitation (a shifted
    human-like voice); WORLD resynthesis wins for buzzy, formant-synthesised targets."""
    from speech import speaker

    if transcripts is not None and len(transcripts) != len(base_clips):
        raise ValueError("choose_method needs one transcript per validation clip")
    scores: dict[str, float] = {}
    wers: dict[str, float] = {}
    for m in methods:
        sims, errs = [], []
        for k, x in enumerate(base_clips):
            if check is not None:
                check()
            y = model.convert(x, sr, m)
            sims.append(speaker.cosine(enrolment, speaker.embed(y, sr, device)))
            if transcripts is not None:
                from speech import asr

                errs.append(asr.wer(transcripts[k], asr.transcribe(y, sr, cpu_threads=asr_threads)))
        scores[m] = float(np.mean(sims))
        if errs:
            wers[m] = float(np.mean(errs))
    eligible = list(methods)
    if wers:
        floor = min(wers.values())
        eligible = [m for m in methods if wers[m] <= floor + wer_margin + 1e-9]
    best = max(eligible, key=lambda m: scores[m])
    if wers:
        close = [m for m in eligible if scores[m] >= scores[best] - similarity_tie]
        best = min(close, key=lambda m: (wers[m], -scores[m]))
    model.config = AdapterConfig(**{**asdict(model.config), "method": best})
    model.stats["method_scores"] = scores
    if wers:
        model.stats["method_wer"] = wers
    return best, scores
