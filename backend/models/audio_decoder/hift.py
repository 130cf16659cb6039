"""HiFT vocoder: mel -> f0 -> harmonic sine source -> iSTFT generator, 22.05 kHz.

Names follow the released `hift.pt`. Its weight-normalised layers are plain convolutions here: the
loader folds weight_g/weight_v into one weight (checkpoint.py); `WEIGHT_NORMED` says which they are.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .config import HiftConfig

# module-name patterns (after the prefix) whose `weight` is stored as weight_g/weight_v in hift.pt
WEIGHT_NORMED = ("conv_pre", "ups.", "resblocks.", "source_resblocks.", "conv_post", "f0_predictor.condnet.")


def is_weight_normed(module_name: str) -> bool:
    return module_name.startswith(WEIGHT_NORMED)


def _padding(kernel: int, dilation: int = 1) -> int:
    return (kernel * dilation - dilation) // 2


class Snake(nn.Module):
    """x + sin^2(alpha x) / alpha, one alpha per channel."""

    def __init__(self, channels: int):
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(channels))

    def forward(self, x):
        alpha = self.alpha.unsqueeze(0).unsqueeze(-1)
        return x + (1.0 / (alpha + 1e-9)) * torch.sin(x * alpha).pow(2)


class ResBlock(nn.Module):
    def __init__(self, channels: int, kernel: int, dilations):
        super().__init__()
        self.convs1 = nn.ModuleList(nn.Conv1d(channels, channels, kernel, 1, dilation=d, padding=_padding(kernel, d))
                                    for d in dilations)
        self.convs2 = nn.ModuleList(nn.Conv1d(channels, channels, kernel, 1, dilation=1, padding=_padding(kernel))
                                    for _ in dilations)
        self.activations1 = nn.ModuleList(Snake(channels) for _ in dilations)
        self.activations2 = nn.ModuleList(Snake(channels) for _ in dilations)

    def forward(self, x):
        for c1, c2, a1, a2 in zip(self.convs1, self.convs2, self.activations1, self.activations2):
            x = c2(a2(c1(a1(x)))) + x
        return x


class F0Predictor(nn.Module):
    """|Linear(ELU-conv stack(mel))|, in Hz per mel frame."""

    def __init__(self, in_channels: int, cond_channels: int, num_layers: int, num_class: int = 1):
        super().__init__()
        layers = []
        for i in range(num_layers):
            layers += [nn.Conv1d(in_channels if i == 0 else cond_channels, cond_channels, 3, padding=1), nn.ELU()]
        self.condnet = nn.Sequential(*layers)
        self.classifier = nn.Linear(cond_channels, num_class)

    def forward(self, mel):
        return torch.abs(self.classifier(self.condnet(mel).transpose(1, 2)).squeeze(-1))


class SourceModule(nn.Module):
    """Harmonic-plus-noise excitation, merged to one channel by Linear + tanh."""

    def __init__(self, harmonics: int):
        super().__init__()
        self.l_linear = nn.Linear(harmonics + 1, 1)

    def forward(self, sines):
        """sines [B, H+1, T] -> [B, 1, T]."""
        return torch.tanh(self.l_linear(sines.transpose(1, 2))).transpose(1, 2)


class HiFTGenerator(nn.Module):
    def __init__(self, cfg: HiftConfig):
        super().__init__()
        self.cfg = cfg
        base = cfg.base_channels
        n_stages = len(cfg.upsample_rates)
        self.num_kernels = len(cfg.resblock_kernel_sizes)
        self.m_source = SourceModule(cfg.nb_harmonics)
        self.conv_pre = nn.Conv1d(cfg.in_channels, base, 7, 1, padding=3)
        self.ups = nn.ModuleList(
            nn.ConvTranspose1d(base // 2 ** i, base // 2 ** (i + 1), k, u, padding=(k - u) // 2)
            for i, (u, k) in enumerate(zip(cfg.upsample_rates, cfg.upsample_kernel_sizes)))

        # the source STFT enters every stage, strided down to that stage's rate
        down_rates = np.cumprod([1] + list(cfg.upsample_rates[::-1][:-1]))[::-1]
        self.source_downs = nn.ModuleList()
        self.source_resblocks = nn.ModuleList()
        for i, (u, k, d) in enumerate(zip(down_rates, cfg.source_resblock_kernel_sizes,
                                          cfg.source_resblock_dilation_sizes)):
            ch, u = base // 2 ** (i + 1), int(u)
            if u == 1:
                self.source_downs.append(nn.Conv1d(cfg.n_fft + 2, ch, 1, 1))
            else:
                self.source_downs.append(nn.Conv1d(cfg.n_fft + 2, ch, u * 2, u, padding=u // 2))
            self.source_resblocks.append(ResBlock(ch, k, d))
        self.resblocks = nn.ModuleList(
            ResBlock(base // 2 ** (i + 1), k, d)
            for i in range(n_stages)
            for k, d in zip(cfg.resblock_kernel_sizes, cfg.resblock_dilation_sizes))
        self.conv_post = nn.Conv1d(base // 2 ** n_stages, cfg.n_fft + 2, 7, 1, padding=3)
        self.f0_predictor = F0Predictor(cfg.in_channels, cfg.f0_predictor.cond_channels,
                                        cfg.f0_predictor.num_layers, cfg.f0_predictor.num_class)
        self.register_buffer("stft_window", self._hann(), persistent=False)

    def _hann(self) -> torch.Tensor:
        # periodic Hann, computed in float64 and rounded once (as scipy's window is)
        n = torch.arange(self.cfg.n_fft, dtype=torch.float64, device="cpu")
        return (0.5 - 0.5 * torch.cos(2 * math.pi * n / self.cfg.n_fft)).float()

    def reset_buffers(self) -> None:
        """Recomputes the derived (not saved) buffers, e.g. after building on the meta device."""
        device = self.conv_pre.weight.device
        self.stft_window = self._hann().to(device)

    # --- source ----------------------------------------------------------------------------------

    def harmonic_sines(self, f0: torch.Tensor, phases: torch.Tensor | None = None, noise: torch.Tensor | None = None,
                       phase_offset: torch.Tensor | None = None):
        """f0 [B, T_mel] Hz -> (sines [B, H+1, T_audio], end phase [B, H+1] in cycles, float64).

        phases [B, H+1, 1] (radians; the fundamental's is forced to 0) and noise [B, H+1, T_audio]
        (standard normal) replace the reference's random draws; None means zero. phase_offset
        (cycles, float64) continues the running phase of an earlier stretch, for streaming."""
        cfg = self.cfg
        up = f0.repeat_interleave(cfg.samples_per_frame, dim=-1).unsqueeze(1)  # [B, 1, T]
        harmonics = torch.arange(1, cfg.nb_harmonics + 2, device=f0.device, dtype=f0.dtype).view(1, -1, 1)
        increments = up * harmonics / cfg.sampling_rate
        cycles = torch.cumsum(increments, dim=-1, dtype=torch.float64)
        if phase_offset is None:
            # rounded to float32 before the modulo, like the reference's float32 cumulative sum
            fraction = cycles.to(f0.dtype) % 1
        else:
            cycles = cycles + phase_offset.unsqueeze(-1)
            fraction = (cycles % 1).to(f0.dtype)
        if cycles.size(-1):
            end_phase = cycles[..., -1] % 1
        else:
            end_phase = torch.zeros(cycles.shape[:2], dtype=torch.float64, device=f0.device)
            if phase_offset is not None:
                end_phase = end_phase + phase_offset
        theta = 2 * np.pi * fraction
        if phases is not None:
            phases = phases.to(theta).clone()
            phases[:, 0] = 0
            theta = theta + phases
        sines = cfg.nsf_alpha * torch.sin(theta)
        voiced = (up > cfg.nsf_voiced_threshold).to(f0.dtype)
        sines = sines * voiced
        if noise is not None:
            amplitude = voiced * cfg.nsf_sigma + (1 - voiced) * cfg.nsf_alpha / 3
            sines = sines + amplitude * noise.to(sines)
        return sines, end_phase

    def source(self, f0, phases=None, noise=None, phase_offset=None):
        """f0 [B, T_mel] -> (source [B, 1, T_audio], end phase)."""
        sines, end_phase = self.harmonic_sines(f0, phases, noise, phase_offset)
        return self.m_source(sines), end_phase

    # --- generator -------------------------------------------------------------------------------

    def _stft(self, x):
        spec = torch.stft(x, self.cfg.n_fft, self.cfg.hop_len, self.cfg.n_fft, window=self.stft_window,
                          return_complex=True)
        spec = torch.view_as_real(spec)
        return torch.cat([spec[..., 0], spec[..., 1]], dim=1)

    def _istft(self, magnitude, phase):
        magnitude = torch.clip(magnitude, max=1e2)
        spec = torch.complex(magnitude * torch.cos(phase), magnitude * torch.sin(phase))
        return torch.istft(spec, self.cfg.n_fft, self.cfg.hop_len, self.cfg.n_fft, window=self.stft_window)

    def generate(self, mel: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        """mel [B, n_mels, T_mel], source [B, 1, T_audio] -> waveform [B, T_audio]."""
        cfg = self.cfg
        s_stft = self._stft(source.squeeze(1))
        x = self.conv_pre(mel)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, cfg.lrelu_slope))
            if i == len(self.ups) - 1:
                x = F.pad(x, (1, 0), mode="reflect")
            x = x + self.source_resblocks[i](self.source_downs[i](s_stft))
            blocks = self.resblocks[i * self.num_kernels:(i + 1) * self.num_kernels]
            total = blocks[0](x)
            for block in blocks[1:]:
                total = total + block(x)
            x = total / self.num_kernels
        x = self.conv_post(F.leaky_relu(x))  # default slope 0.01 here, unlike the stages
        bins = cfg.n_fft // 2 + 1
        wave = self._istft(torch.exp(x[:, :bins]), torch.sin(x[:, bins:]))
        return torch.clamp(wave, -cfg.audio_limit, cfg.audio_limit)

    def forward(self, mel, phases=None, noise=None):
        """mel -> (waveform [B, T_audio], source [B, 1, T_audio], f0 [B, T_mel])."""
        f0 = self.f0_predictor(mel)
        source, _ = self.source(f0, phases, noise)
        return self.generate(mel, source), source, f0

    # --- streaming support -----------------------------------------------------------------------

    def context_frames(self) -> int:
        """Mel frames on each side that can influence one output frame: an upper bound that adds the
        reach of the main path and of the f0 -> source path instead of taking the larger."""
        cfg = self.cfg
        spf = cfg.samples_per_frame
        stage_rates = np.cumprod(cfg.upsample_rates)  # samples per mel frame after each stage
        stft_rate = spf / cfg.hop_len
        main, previous = 3.0, 1.0  # conv_pre k7
        source_path = 0.0
        for i, (u, k) in enumerate(zip(cfg.upsample_rates, cfg.upsample_kernel_sizes)):
            main += math.ceil(k / u) / previous
            main += max(_resblock_reach(k2, d) for k2, d in
                        zip(cfg.resblock_kernel_sizes, cfg.resblock_dilation_sizes)) / stage_rates[i]
            previous = stage_rates[i]
            down = self.source_downs[i].kernel_size[0] / stft_rate
            source_path = max(source_path, down + _resblock_reach(cfg.source_resblock_kernel_sizes[i],
                                                                  cfg.source_resblock_dilation_sizes[i]) / stage_rates[i])
        main += 3 / stage_rates[-1] + cfg.n_fft / spf  # conv_post k7, iSTFT window
        source = cfg.f0_predictor.num_layers + cfg.n_fft / spf + source_path  # f0 convs, source STFT
        return int(math.ceil(main + source)) + 2


def _resblock_reach(kernel: int, dilations) -> int:
    return sum(_padding(kernel, d) + _padding(kernel) for d in dilations)
