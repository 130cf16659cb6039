"""Conditional flow matching: Euler steps on a cosine time schedule with classifier-free guidance, and the
U-Net-style velocity estimator (ResNet blocks + transformer blocks, one down/up level per channel entry).

Names follow the released `flow.pt` under `decoder.` (`decoder.estimator.down_blocks.0.0.block1...`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import EstimatorConfig, FlowConfig


def time_schedule(n_timesteps: int, scheduler: str = "cosine", dtype=torch.float32, device=None) -> torch.Tensor:
    """The n+1 grid points; cosine bunches them near t=0, where the velocity changes fastest."""
    t_span = torch.linspace(0, 1, n_timesteps + 1, device=device, dtype=dtype)
    if scheduler == "cosine":
        t_span = 1 - torch.cos(t_span * 0.5 * torch.pi)
    elif scheduler != "linear":
        raise ValueError(f"unknown t_scheduler {scheduler!r}: use 'cosine' or 'linear'")
    return t_span


def sinusoidal_time_embedding(t: torch.Tensor, dim: int, scale: float = 1000.0) -> torch.Tensor:
    """[B] -> [B, dim]: sin half first, then cos, of scale * t over geometric frequencies."""
    if t.ndim < 1:
        t = t.unsqueeze(0)
    half = dim // 2
    step = math.log(10000) / (half - 1)
    freqs = torch.exp(torch.arange(half, device=t.device).float() * -step)
    angles = scale * t.unsqueeze(1) * freqs.unsqueeze(0)
    return torch.cat((angles.sin(), angles.cos()), dim=-1)


class TimestepEmbedding(nn.Module):
    def __init__(self, in_channels: int, dim: int):
        super().__init__()
        self.linear_1 = nn.Linear(in_channels, dim)
        self.linear_2 = nn.Linear(dim, dim)

    def forward(self, x):
        return self.linear_2(F.silu(self.linear_1(x)))


class Block1D(nn.Module):
    def __init__(self, dim: int, dim_out: int, groups: int):
        super().__init__()
        self.block = nn.Sequential(nn.Conv1d(dim, dim_out, 3, padding=1), nn.GroupNorm(groups, dim_out), nn.Mish())

    def forward(self, x):
        return self.block(x)


class ResnetBlock1D(nn.Module):
    def __init__(self, dim: int, dim_out: int, time_dim: int, groups: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Mish(), nn.Linear(time_dim, dim_out))
        self.block1 = Block1D(dim, dim_out, groups)
        self.block2 = Block1D(dim_out, dim_out, groups)
        self.res_conv = nn.Conv1d(dim, dim_out, 1)

    def forward(self, x, time_emb):
        h = self.block1(x) + self.mlp(time_emb).unsqueeze(-1)
        return self.block2(h) + self.res_conv(x)


class Attention(nn.Module):
    """Self-attention without q/k/v biases. The reference adds its all-ones 0/1 mask to the logits,
    which changes nothing for one unpadded utterance, so no mask is used here."""

    def __init__(self, dim: int, heads: int, head_dim: int):
        super().__init__()
        inner = heads * head_dim
        self.heads = heads
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_k = nn.Linear(dim, inner, bias=False)
        self.to_v = nn.Linear(dim, inner, bias=False)
        self.to_out = nn.ModuleList([nn.Linear(inner, dim), nn.Dropout(0.0)])

    def forward(self, x):
        b, t, _ = x.shape
        q, k, v = (proj(x).view(b, t, self.heads, -1).transpose(1, 2) for proj in (self.to_q, self.to_k, self.to_v))
        out = F.scaled_dot_product_attention(q, k, v)
        return self.to_out[0](out.transpose(1, 2).reshape(b, t, -1))


class GELUProjection(nn.Module):
    def __init__(self, dim_in: int, dim_out: int):
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out)

    def forward(self, x):
        return F.gelu(self.proj(x))


class FeedForward(nn.Module):
    def __init__(self, dim: int, act_fn: str, mult: int = 4):
        super().__init__()
        if act_fn != "gelu":
            raise ValueError(f"estimator act_fn {act_fn!r} is not supported: the released decoder uses 'gelu'")
        self.net = nn.ModuleList([GELUProjection(dim, dim * mult), nn.Dropout(0.0), nn.Linear(dim * mult, dim)])

    def forward(self, x):
        for layer in self.net:
            x = layer(x)
        return x


class TransformerBlock(nn.Module):
    """Pre-norm self-attention and feed-forward, on [B, T, C]."""

    def __init__(self, dim: int, cfg: EstimatorConfig):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-5)
        self.attn1 = Attention(dim, cfg.num_heads, cfg.attention_head_dim)
        self.norm3 = nn.LayerNorm(dim, eps=1e-5)
        self.ff = FeedForward(dim, cfg.act_fn)

    def forward(self, x):
        x = self.attn1(self.norm1(x)) + x
        return self.ff(self.norm3(x)) + x


class Downsample1D(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.conv = nn.Conv1d(dim, dim, 3, 2, 1)

    def forward(self, x):
        return self.conv(x)


class Upsample1D(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.conv = nn.ConvTranspose1d(dim, dim, 4, 2, 1)

    def forward(self, x):
        return self.conv(x)


def _transformers(x: torch.Tensor, blocks: nn.ModuleList) -> torch.Tensor:
    x = x.transpose(1, 2)
    for block in blocks:
        x = block(x)
    return x.transpose(1, 2)


class ConditionalDecoder(nn.Module):
    """Velocity v(x, t | mu, spks, cond) for x [B, n_mels, T]; the inputs are stacked on the channel axis."""

    def __init__(self, n_mels: int, cfg: EstimatorConfig):
        super().__init__()
        in_channels = 4 * n_mels  # x, mu, speaker (broadcast over time), cond
        channels = tuple(cfg.channels)
        time_dim = channels[0] * 4
        groups = cfg.norm_groups
        self.time_channels = in_channels
        self.time_mlp = TimestepEmbedding(in_channels, time_dim)

        def transformers(dim):
            return nn.ModuleList(TransformerBlock(dim, cfg) for _ in range(cfg.n_blocks))

        self.down_blocks = nn.ModuleList()
        out_ch = in_channels
        for i, width in enumerate(channels):
            in_ch, out_ch = out_ch, width
            last = i == len(channels) - 1
            down = nn.Conv1d(out_ch, out_ch, 3, padding=1) if last else Downsample1D(out_ch)
            self.down_blocks.append(nn.ModuleList([ResnetBlock1D(in_ch, out_ch, time_dim, groups),
                                                   transformers(out_ch), down]))
        self.mid_blocks = nn.ModuleList(
            nn.ModuleList([ResnetBlock1D(channels[-1], channels[-1], time_dim, groups), transformers(channels[-1])])
            for _ in range(cfg.num_mid_blocks))
        up_channels = channels[::-1] + (channels[0],)
        self.up_blocks = nn.ModuleList()
        for i in range(len(up_channels) - 1):
            in_ch, out_ch = up_channels[i] * 2, up_channels[i + 1]
            last = i == len(up_channels) - 2
            up = nn.Conv1d(out_ch, out_ch, 3, padding=1) if last else Upsample1D(out_ch)
            self.up_blocks.append(nn.ModuleList([ResnetBlock1D(in_ch, out_ch, time_dim, groups),
                                                 transformers(out_ch), up]))
        self.final_block = Block1D(up_channels[-1], up_channels[-1], groups)
        self.final_proj = nn.Conv1d(up_channels[-1], n_mels, 1)

    def forward(self, x, mu, t, spks, cond):
        """x, mu, cond [B, n_mels, T]; spks [B, n_mels]; t scalar or [B]."""
        t = self.time_mlp(sinusoidal_time_embedding(t, self.time_channels).to(x.dtype))
        if t.size(0) != x.size(0):
            t = t.expand(x.size(0), -1)
        x = torch.cat([x, mu, spks.unsqueeze(-1).expand(-1, -1, x.size(-1)), cond], dim=1)

        skips = []
        for resnet, blocks, down in self.down_blocks:
            x = _transformers(resnet(x, t), blocks)
            skips.append(x)
            x = down(x)
        for resnet, blocks in self.mid_blocks:
            x = _transformers(resnet(x, t), blocks)
        for resnet, blocks, up in self.up_blocks:
            skip = skips.pop()
            x = torch.cat([x[:, :, :skip.size(-1)], skip], dim=1)
            x = up(_transformers(resnet(x, t), blocks))
        return self.final_proj(self.final_block(x))


class ConditionalFlowMatching(nn.Module):
    def __init__(self, cfg: FlowConfig):
        super().__init__()
        self.cfg = cfg
        self.estimator = ConditionalDecoder(cfg.output_size, cfg.estimator)

    def velocity(self, x, mu, t, spks, cond):
        """Guided velocity (1 + r) v(x | mu, spks, cond) - r v(x | 0, 0, 0), both branches in one batch."""
        rate = self.cfg.inference_cfg_rate
        if rate <= 0:
            return self.estimator(x, mu, t, spks, cond)
        b = x.size(0)
        both = self.estimator(torch.cat([x, x]), torch.cat([mu, torch.zeros_like(mu)]), t,
                              torch.cat([spks, torch.zeros_like(spks)]), torch.cat([cond, torch.zeros_like(cond)]))
        return (1.0 + rate) * both[:b] - rate * both[b:]

    def forward(self, mu: torch.Tensor, spks: torch.Tensor, noise: torch.Tensor,
                cond: torch.Tensor | None = None, n_timesteps: int | None = None) -> torch.Tensor:
        """Integrates from x0 = noise * temperature at t=0 to the mel at t=1."""
        n = n_timesteps or self.cfg.n_timesteps
        if cond is None:
            cond = torch.zeros_like(mu)
        x = noise.to(mu.dtype) * self.cfg.temperature
        t_span = time_schedule(n, self.cfg.t_scheduler, mu.dtype, mu.device)
        # t advances by dt and dt is re-derived from the grid each step, as the reference does
        t, dt = t_span[0], t_span[1] - t_span[0]
        for step in range(1, len(t_span)):
            x = x + dt * self.velocity(x, mu, t, spks, cond)
            t = t + dt
            if step < len(t_span) - 1:
                dt = t_span[step + 1] - t
        return x

    def step_times(self, n_timesteps: int | None = None, dtype=torch.float32) -> torch.Tensor:
        """The t handed to the estimator at each step (for checks)."""
        n = n_timesteps or self.cfg.n_timesteps
        t_span = time_schedule(n, self.cfg.t_scheduler, dtype)
        t, dt, out = t_span[0], t_span[1] - t_span[0], []
        for step in range(1, len(t_span)):
            out.append(t)
            t = t + dt
            if step < len(t_span) - 1:
                dt = t_span[step + 1] - t
        return torch.stack(out)
