"""The blendshape generator: speech units and speech-generator states to ARKit-52 curves at 30 fps.

Non-autoregressive. Unit embeddings, linearly interpolated from the unit rate (12.5 Hz) to 30 fps,
are the TQGF queries over the speech generator's hidden states; the fused frames are rotated once by
a periodic rotary rotation, pass through causal post-norm transformer layers and a small head.
Attribute names follow the released checkpoint (`model.blendshape_generator.*`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .configuration import BLENDSHAPE_FPS, IGNORE_INDEX, UNIT_RATE_HZ, BlendshapeGeneratorConfig
from .tqgf import TQGF


def frame_count(units: torch.Tensor) -> int:
    """Frames at 30 fps for a unit tensor: only ids > 0 count, over the whole batch.

    Computed in float64 in the reference's order (n x 1/12.5, then x 30) and floored, so some exact
    products land just below an integer (205 units give 491 frames, not 492).
    """
    n = int(((units > 0) & (units != IGNORE_INDEX)).sum().item())
    if n <= 0:
        return 0
    return int(math.floor(n * (1.0 / float(UNIT_RATE_HZ)) * BLENDSHAPE_FPS))


def valid_frame_lengths(units: torch.Tensor, frames: int) -> torch.Tensor:
    """Per row: trunc(float32(#ids != -100) / float32(L) x T), clamped to [1, T] (0 counts as valid here)."""
    count = units.ne(IGNORE_INDEX).sum(dim=-1).float()
    length = max(units.shape[1], 1)
    return torch.clamp((count / float(length) * frames).long(), min=1, max=frames)


class PeriodicRotation(nn.Module):
    """Rotates feature pairs (0,1), (2,3), ... of frame t by (t mod period) x inv_freq[i].

    Applied once to the transformer's input, not inside attention. `inv_freq` is kept as the
    released checkpoint stores it; the angles use the same formula from the width, as the reference
    (whose cached tables are built from the formula before any weights are loaded).
    """

    def __init__(self, dim: int, period: int, base: float = 10000.0):
        super().__init__()
        if dim % 2:
            raise ValueError(f"the blendshape decoder width must be even for the rotation, got {dim}")
        self.dim = dim
        self.period = period
        self.base = base
        self.register_buffer("inv_freq", self._inv_freq(), persistent=True)

    def _inv_freq(self, device=None) -> torch.Tensor:
        return 1.0 / (self.base ** (torch.arange(0, self.dim, 2, device=device).float() / self.dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x.shape[1]
        positions = torch.arange(t, device=x.device, dtype=torch.float32) % self.period
        angles = torch.outer(positions, self._inv_freq(x.device))  # [T, D/2], float32
        cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
        even, odd = x[..., 0::2], x[..., 1::2]
        return torch.stack([even * cos - odd * sin, even * sin + odd * cos], dim=-1).flatten(-2)


class PostNormLayer(nn.Module):
    """x = LN1(x + SelfAttention(x)); x = LN2(x + Linear(ReLU(Linear(x)))), as torch's encoder layer."""

    def __init__(self, dim: int, heads: int, ff_dim: int, dropout: float = 0.0):
        super().__init__()
        self.heads = heads
        self.self_attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.linear1 = nn.Linear(dim, ff_dim)
        self.linear2 = nn.Linear(ff_dim, dim)
        self.norm1 = nn.LayerNorm(dim, eps=1e-5)
        self.norm2 = nn.LayerNorm(dim, eps=1e-5)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        """allowed: bool [B, T, T], True where frame t may attend frame s."""
        b, t, d = x.shape
        qkv = F.linear(x, self.self_attn.in_proj_weight, self.self_attn.in_proj_bias)
        q, k, v = (y.view(b, t, self.heads, d // self.heads).transpose(1, 2) for y in qkv.chunk(3, dim=-1))
        attn = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed[:, None])
        attn = self.self_attn.out_proj(attn.transpose(1, 2).reshape(b, t, d))
        x = self.norm1(x + attn)
        return self.norm2(x + self.linear2(F.relu(self.linear1(x))))


class _LayerStack(nn.Module):
    def __init__(self, layers):
        super().__init__()
        self.layers = nn.ModuleList(layers)


class RotatedEncoder(nn.Module):
    """The released nesting `transformer_encoder.{transformer_encoder.layers.*, rope}`."""

    def __init__(self, layers, rope: PeriodicRotation):
        super().__init__()
        self.transformer_encoder = _LayerStack(layers)
        self.rope = rope  # the same module as the generator's `rope` (its buffer is stored twice)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        x = self.rope(x)
        for layer in self.transformer_encoder.layers:
            x = layer(x, allowed)
        return x


@dataclass
class BlendshapeOutput:
    blendshapes: torch.Tensor  # [B, T, 52], raw head output (not clipped)
    target_frames: int
    tgt_len: torch.Tensor  # [B]
    key_padding_mask: torch.Tensor  # [B, T], True = padding
    intermediates: dict


class BlendshapeGenerator(nn.Module):
    def __init__(self, config: BlendshapeGeneratorConfig):
        super().__init__()
        self.config = config
        d = config.decoder_dim
        self.speech_gen_projection = nn.Linear(config.speech_hidden_size, d)
        self.speech_token_embedding = nn.Embedding(config.unit_vocab_size, config.unit_embed_dim)
        self.speech_token_projection = nn.Linear(config.unit_embed_dim, d)
        self.tqgf = TQGF(d, depth=config.tqgf_depth, dim_head=config.tqgf_dim_head, heads=config.tqgf_heads)
        self.rope = PeriodicRotation(d, config.period)
        layers = [PostNormLayer(d, config.num_heads, 2 * d, config.dropout) for _ in range(config.num_layers)]
        self.transformer_encoder = RotatedEncoder(layers, self.rope)
        self.out_head = nn.Sequential(
            nn.LayerNorm(d),
            nn.Linear(d, d // 2),
            nn.ReLU(),
            nn.Dropout(config.dropout),
            nn.Linear(d // 2, config.out_dim),
        )

    def unit_features(self, units: torch.Tensor) -> torch.Tensor:
        """Embedding -> projection, rows at -100 zeroed (looked up as id 0 first)."""
        valid = units.ne(IGNORE_INDEX)
        feats = self.speech_token_projection(self.speech_token_embedding(units.masked_fill(~valid, 0)))
        return feats * valid.unsqueeze(-1).to(feats.dtype)

    def forward(self, speech_hidden: torch.Tensor, units: torch.Tensor,
                speech_mask: torch.Tensor | None = None, keep_intermediates: bool = False) -> BlendshapeOutput:
        """speech_hidden [B, M, Hs], units [B, L] (-100 = padding), speech_mask [B, M] (True = attend)."""
        param = self.speech_gen_projection.weight
        speech_hidden = speech_hidden.to(device=param.device, dtype=param.dtype)
        units = units.to(param.device)
        frames = frame_count(units)
        if frames <= 0:
            raise ValueError("no speech units above 0, so there are no frames to animate")
        b = units.shape[0]

        feats = self.unit_features(units)
        queries = feats
        if feats.shape[1] != frames:
            queries = F.interpolate(feats.transpose(1, 2), size=frames, mode="linear",
                                    align_corners=False).transpose(1, 2)
        context = self.speech_gen_projection(speech_hidden)
        mask = None if speech_mask is None else speech_mask.to(param.device)
        fused = self.tqgf(context, queries, mask)

        tgt_len = valid_frame_lengths(units, frames)
        steps = torch.arange(frames, device=param.device)
        padding = steps[None, :] >= tgt_len[:, None]  # [B, T]
        causal = steps[None, :] <= steps[:, None]  # [T, T]: frame t sees frames <= t
        allowed = causal[None] & ~padding[:, None, :]

        rotated = self.rope(fused) if keep_intermediates else None
        encoded = self.transformer_encoder(fused, allowed)
        out = self.out_head(encoded)
        intermediates = {}
        if keep_intermediates:
            intermediates = {
                "unit_features": feats, "unit_features_interp": queries, "hidden_proj": context,
                "tqgf_out": fused, "encoder_in_after_rope": rotated, "encoder_out": encoded,
            }
        return BlendshapeOutput(out, frames, tgt_len, padding.expand(b, -1), intermediates)

    @torch.no_grad()
    def predict(self, speech_hidden: torch.Tensor, units: torch.Tensor,
                speech_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward(speech_hidden, units, speech_mask).blendshapes
