"""AudioDecoder: speech units (12.5 Hz) -> 80-bin mel (flow matching) -> 22.05 kHz audio (HiFT)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
import torch

from . import noise as rnd
from .checkpoint import FLOW_FILES, HIFT_FILES, find_weights, load_into, read_state_dict, released_state_dict
from .config import DecoderConfig, released_config
from .flow import FlowModel, mel_frame_count, steady_source_index
from .hift import HiFTGenerator, is_weight_normed


def _resolve_device(device) -> torch.device:
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("the audio decoder was asked to run on CUDA, but torch sees no CUDA device: "
                           "use device='cpu' or install a CUDA build of torch")
    return device


class AudioDecoder:
    """The GLM-4-Voice decoder. `decode` turns a whole utterance into audio; `stream` turns unit chunks
    into audio chunks as they arrive. With deterministic=True every random draw (the ODE's start, the
    harmonic phases, the source noise) is zero; otherwise they are drawn from `seed`, by position, so the
    same units and seed give the same audio, offline or streamed."""

    def __init__(self, flow: FlowModel, hift: HiFTGenerator, config: DecoderConfig, device="cpu"):
        self.config = config
        self.device = _resolve_device(device)
        self.flow = flow.to(self.device).eval()
        self.hift = hift.to(self.device).eval()
        self._noise_cache: dict = {}

    # --- sizes -----------------------------------------------------------------------------------

    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    @property
    def hop_length(self) -> int:
        return self.config.hop_length

    @property
    def n_mels(self) -> int:
        return self.config.n_mels

    def mel_frames(self, n_units: int) -> int:
        """Mel frames for n units: int(float32(n) / 12.5 * 22050 / 256), the reference's float32 arithmetic."""
        f = self.config.flow
        return mel_frame_count(n_units, f.input_frame_rate, self.sample_rate, self.hop_length)

    def audio_samples(self, n_units: int) -> int:
        return self.mel_frames(n_units) * self.hop_length

    # --- inputs ----------------------------------------------------------------------------------

    def unit_tensor(self, units) -> torch.Tensor:
        """list / array / tensor of unit ids -> LongTensor [1, N] on the decoder's device."""
        if isinstance(units, torch.Tensor):
            t = units.detach().to("cpu")
        else:
            t = torch.as_tensor(np.asarray(units))
        if t.numel() == 0:
            t = t.long()
        if t.dtype.is_floating_point or t.dtype == torch.bool:
            raise TypeError(f"speech units must be integer ids, got {t.dtype}")
        t = t.long().reshape(-1) if t.dim() <= 1 or t.shape[0] == 1 else None
        if t is None:
            raise ValueError("decode one utterance at a time: pass a 1-D sequence of unit ids (or shape [1, N])")
        vocab = self.config.flow.vocab_size
        if t.numel() and int(t.max()) >= vocab:
            raise ValueError(f"unit id {int(t.max())} is outside this decoder's vocabulary of {vocab} units: "
                             "strip end-of-speech and special ids before decoding, or check that the decoder "
                             "matches the speech generator")
        # negative ids (padding) are clamped to 0 inside the flow, as the reference does
        return t.view(1, -1).to(self.device)

    def ode_noise(self, start: int, stop: int, deterministic: bool, seed: int) -> torch.Tensor:
        """The ODE's starting point for mel frames [start, stop): [1, n_mels, stop - start]."""
        if deterministic:
            return torch.zeros(1, self.n_mels, stop - start, device=self.device)
        return self._noise(seed, rnd.ODE_START, self.n_mels, 512).take(start, stop).unsqueeze(0).to(self.device)

    def source_randomness(self, start: int, stop: int, deterministic: bool, seed: int):
        """(harmonic phases [1, H+1, 1], sine noise [1, H+1, stop - start]) for audio samples [start, stop)."""
        if deterministic:
            return None, None
        h = self.config.hift.nb_harmonics
        phases = rnd.harmonic_phases(seed, h).to(self.device)
        noise = self._noise(seed, rnd.SINE_NOISE, h + 1, 1 << 16).take(start, stop).unsqueeze(0).to(self.device)
        return phases, noise

    def _noise(self, seed, stream, rows, block) -> rnd.PositionalNoise:
        cache = self._noise_cache
        key = (int(seed), stream)
        if key not in cache:
            if len(cache) > 8:
                cache.clear()
            cache[key] = rnd.PositionalNoise(seed, stream, rows, block)
        return cache[key]

    # --- offline ---------------------------------------------------------------------------------

    @torch.inference_mode()
    def units_to_mel(self, units, deterministic: bool = False, seed: int = 0,
                     noise: torch.Tensor | None = None, n_frames: int | None = None,
                     first_frame: int = 0, first_unit: int | None = None) -> torch.Tensor:
        """Units -> mel [1, n_mels, T]. `noise` overrides the ODE start; `n_frames` the length (default:
        from the unit count). For a stretch of a longer utterance (streaming), `first_frame` is where its
        frames sit (which picks their noise) and `first_unit` where its units do: frames then map to
        units at the nominal rate instead of being stretched over the stretch."""
        u = self.unit_tensor(units)
        if u.size(1) == 0:
            raise ValueError("no speech units to decode")
        t = self.mel_frames(u.size(1)) if n_frames is None else int(n_frames)
        if t < 1:
            raise ValueError(f"{u.size(1)} unit(s) make no mel frame; decode at least 1 unit")
        if noise is None:
            noise = self.ode_noise(first_frame, first_frame + t, deterministic, seed)
        elif tuple(noise.shape) != (1, self.n_mels, t):
            raise ValueError(f"noise must have shape (1, {self.n_mels}, {t}), got {tuple(noise.shape)}")
        index = None
        if first_unit is not None:
            f = self.config.flow
            index = steady_source_index(first_frame, t, first_unit, u.size(1), f.input_frame_rate,
                                        self.sample_rate, self.hop_length)
        return self.flow(u, t, noise.to(self.device), index=index)

    @torch.inference_mode()
    def mel_to_audio(self, mel: torch.Tensor, deterministic: bool = False, seed: int = 0) -> torch.Tensor:
        """mel [1, n_mels, T] -> waveform [T * hop] (float32 tensor)."""
        mel = mel.to(self.device, torch.float32)
        phases, noise = self.source_randomness(0, mel.size(-1) * self.hop_length, deterministic, seed)
        wave, _, _ = self.hift(mel, phases, noise)
        return wave[0]

    def decode(self, units, deterministic: bool = False, seed: int = 0) -> tuple[np.ndarray, int]:
        """Units -> (mono float32 audio, sample rate); len(audio) == mel_frames(len(units)) * 256."""
        mel = self.units_to_mel(units, deterministic=deterministic, seed=seed)
        audio = self.mel_to_audio(mel, deterministic=deterministic, seed=seed)
        return audio.float().cpu().numpy(), self.sample_rate

    # --- streaming -------------------------------------------------------------------------------

    def stream(self, unit_chunks: Iterable[Sequence[int]], deterministic: bool = False, seed: int = 0,
               settings=None, **overrides) -> Iterator[np.ndarray]:
        """Unit chunks in (e.g. as the speech generator emits them), float32 audio chunks out. Their
        concatenation has the offline length and matches offline decoding away from the seams."""
        from .streaming import StreamSettings, stream_decode

        settings = settings or StreamSettings(**overrides)
        return stream_decode(self, unit_chunks, settings, deterministic=deterministic, seed=seed)

    # --- saving ----------------------------------------------------------------------------------

    def save(self, folder: str | Path) -> Path:
        """Writes flow.pt and hift.pt in the released key layout (weight_g/weight_v included) plus config.json."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        torch.save(released_state_dict(self.flow.cpu()), folder / "flow.pt")
        torch.save(released_state_dict(self.hift.cpu(), is_weight_normed), folder / "hift.pt")
        self.flow.to(self.device)
        self.hift.to(self.device)
        (folder / "config.json").write_text(json.dumps(self.config.to_dict(), indent=2))
        return folder


def _as_config(config) -> DecoderConfig:
    if config is None:
        return released_config()
    if isinstance(config, DecoderConfig):
        return config.validate()
    if isinstance(config, dict):
        return DecoderConfig.from_dict(config)
    return DecoderConfig.from_file(config)


def load_decoder(folder, device="cpu", config=None) -> AudioDecoder:
    """Loads a `glm-4-voice-decoder` folder (flow.pt + hift.pt, as released). The configuration is
    `config` if given, else the folder's config.json if it has one, else the released one."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"audio decoder folder {folder} does not exist: download glm-4-voice-decoder "
                                "(flow.pt, hift.pt) and point to its folder")
    if config is None and (folder / "config.json").is_file():
        config = folder / "config.json"
    cfg = _as_config(config)
    flow_path, hift_path = find_weights(folder, FLOW_FILES), find_weights(folder, HIFT_FILES)
    with torch.device("meta"):  # shapes only; the weights come from the files
        flow, hift = FlowModel(cfg.flow), HiFTGenerator(cfg.hift)
    load_into(flow, read_state_dict(flow_path), flow_path.name)
    load_into(hift, read_state_dict(hift_path), hift_path.name)
    hift.reset_buffers()
    return AudioDecoder(flow, hift, cfg, device)


def random_decoder(config: DecoderConfig | None = None, seed: int = 0, device="cpu",
                   voiced_hz: float = 120.0) -> AudioDecoder:
    """A decoder with random weights (tests, benchmarks, tiny checkpoints). Parameters that default
    initialisation makes constant get small random offsets so that each one matters; the f0 head is
    biased to `voiced_hz` so that the vocoder makes harmonics, as a trained one does."""
    cfg = _as_config(config)
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        flow, hift = FlowModel(cfg.flow), HiFTGenerator(cfg.hift)
        with torch.no_grad():
            for module in (flow, hift):
                for p in module.parameters():
                    if p.numel() == 1 or bool((p == p.flatten()[0]).all()):
                        p.add_(0.05 * torch.randn_like(p))
            for name in ("pos_bias_u", "pos_bias_v"):
                for layer in flow.encoder.encoders:
                    getattr(layer.self_attn, name).normal_(0, 0.1)
            hift.f0_predictor.classifier.weight.mul_(10.0)
            hift.f0_predictor.classifier.bias.fill_(voiced_hz)
    finally:
        torch.random.set_rng_state(gen_state)
    return AudioDecoder(flow, hift, cfg, device)
