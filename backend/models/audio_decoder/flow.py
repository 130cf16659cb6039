"""Units to the mel condition `mu`: unit embedding, block conformer encoder, interpolating length regulator.

Module and parameter names follow the released `flow.pt`, so its state dict loads key for key.
The speaker condition and the ODE that turns `mu` into mel live in flow_matching.py.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import EncoderConfig, FlowConfig
from .flow_matching import ConditionalFlowMatching


def mel_frame_count(n_units: int, frame_rate: float, sample_rate: int, hop: int) -> int:
    """int(float32(n) / rate * sr / hop), evaluated in float32 like the reference (3392 units -> 23372)."""
    n = torch.tensor(float(n_units), dtype=torch.float32)
    return int((n / frame_rate * sample_rate / hop).item())


def nearest_source_index(n_units: int, n_frames: int) -> torch.Tensor:
    """Which unit row nearest upsampling copies into each frame: floor(float32(t) * float32(n / T)).

    Done in float32 on purpose: that is how the reference's interpolation computes it, and a float64
    index differs at a few frames (24 units -> 165 frames: frames 55 and 110 take rows 7 and 15)."""
    scale = torch.tensor(float(n_units), dtype=torch.float32) / n_frames
    t = torch.arange(n_frames, dtype=torch.float32)
    return torch.floor(t * scale).long().clamp_(max=n_units - 1)


def steady_source_index(first_frame: int, n_frames: int, first_unit: int, n_units: int,
                        frame_rate: float, sample_rate: int, hop: int) -> torch.Tensor:
    """Unit row (within units [first_unit, first_unit + n_units)) of each frame of [first_frame, first_frame +
    n_frames) at the nominal rate: frame t holds unit floor(t * hop * rate / sr). It does not depend on how
    many units follow, so chunks of one stream map every frame to the same unit."""
    t = torch.arange(first_frame, first_frame + n_frames, dtype=torch.float64)
    unit = torch.floor(t * (hop * frame_rate) / sample_rate).long()
    return (unit - first_unit).clamp_(0, n_units - 1)


def relative_positions(length: int, d_model: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """ESPnet relative sinusoids [1, 2L-1, d]: relative positions L-1 ... 0 ... -(L-1), sin/cos interleaved."""
    position = torch.arange(0, length, dtype=torch.float32).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * -(math.log(10000.0) / d_model))
    positive = torch.zeros(length, d_model)
    negative = torch.zeros(length, d_model)
    positive[:, 0::2] = torch.sin(position * div_term)
    positive[:, 1::2] = torch.cos(position * div_term)
    negative[:, 0::2] = torch.sin(-1 * position * div_term)
    negative[:, 1::2] = torch.cos(-1 * position * div_term)
    table = torch.cat([torch.flip(positive, [0]), negative[1:]], dim=0)
    return table.unsqueeze(0).to(device=device, dtype=dtype)


def block_causal_mask(length: int, block_size: int, device=None) -> torch.Tensor:
    """[L, L] bool, True = may attend: every earlier unit, plus the rest of the unit's own block."""
    i = torch.arange(length, device=device)
    block_end = (i // block_size + 1) * block_size
    return i.unsqueeze(0) < block_end.unsqueeze(1)


class BlockRelPositionAttention(nn.Module):
    """Transformer-XL style attention (content bias u, position bias v) under the block-causal mask."""

    def __init__(self, d_model: int, heads: int, key_bias: bool = True):
        super().__init__()
        self.h = heads
        self.d_k = d_model // heads
        self.linear_q = nn.Linear(d_model, d_model)
        self.linear_k = nn.Linear(d_model, d_model, bias=key_bias)
        self.linear_v = nn.Linear(d_model, d_model)
        self.linear_out = nn.Linear(d_model, d_model)
        self.linear_pos = nn.Linear(d_model, d_model, bias=False)
        self.pos_bias_u = nn.Parameter(torch.zeros(heads, self.d_k))
        self.pos_bias_v = nn.Parameter(torch.zeros(heads, self.d_k))

    def forward(self, x: torch.Tensor, pos_emb: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        b, length, _ = x.shape
        q = self.linear_q(x).view(b, length, self.h, self.d_k)
        k = self.linear_k(x).view(b, length, self.h, self.d_k).transpose(1, 2)
        v = self.linear_v(x).view(b, length, self.h, self.d_k).transpose(1, 2)
        p = self.linear_pos(pos_emb).view(pos_emb.size(0), -1, self.h, self.d_k).transpose(1, 2)

        content = torch.matmul((q + self.pos_bias_u).transpose(1, 2), k.transpose(-2, -1))
        by_offset = torch.matmul((q + self.pos_bias_v).transpose(1, 2), p.transpose(-2, -1))
        # column m of `by_offset` holds relative position L-1-m; query i and key j are i-j apart
        i = torch.arange(length, device=x.device)
        column = (length - 1) - i.unsqueeze(1) + i.unsqueeze(0)
        position = torch.gather(by_offset, -1, column.expand(b, self.h, length, length))

        scores = (content + position) / math.sqrt(self.d_k)
        blocked = ~allowed
        scores = scores.masked_fill(blocked, float("-inf"))
        attn = torch.softmax(scores, dim=-1).masked_fill(blocked, 0.0)
        out = torch.matmul(attn, v).transpose(1, 2).reshape(b, length, self.h * self.d_k)
        return self.linear_out(out)


class FeedForward(nn.Module):
    def __init__(self, d_model: int, hidden: int):
        super().__init__()
        self.w_1 = nn.Linear(d_model, hidden)
        self.w_2 = nn.Linear(hidden, d_model)

    def forward(self, x):
        return self.w_2(F.silu(self.w_1(x)))


class ConformerLayer(nn.Module):
    """Pre-norm attention + feed-forward (the released encoder has neither macaron FF nor conv module)."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        d = cfg.output_size
        self.self_attn = BlockRelPositionAttention(d, cfg.attention_heads, cfg.key_bias)
        self.feed_forward = FeedForward(d, cfg.linear_units)
        self.norm_ff = nn.LayerNorm(d, eps=1e-5)
        self.norm_mha = nn.LayerNorm(d, eps=1e-5)

    def forward(self, x, pos_emb, allowed):
        x = x + self.self_attn(self.norm_mha(x), pos_emb, allowed)
        return x + self.feed_forward(self.norm_ff(x))


class LinearInput(nn.Module):
    def __init__(self, idim: int, odim: int):
        super().__init__()
        self.out = nn.Sequential(nn.Linear(idim, odim), nn.LayerNorm(odim, eps=1e-5))

    def forward(self, x):
        return self.out(x)


class BlockConformerEncoder(nn.Module):
    def __init__(self, input_size: int, cfg: EncoderConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = LinearInput(input_size, cfg.output_size)
        self.encoders = nn.ModuleList(ConformerLayer(cfg) for _ in range(cfg.num_blocks))
        self.after_norm = nn.LayerNorm(cfg.output_size, eps=1e-5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        length = x.size(1)
        x = self.embed(x) * math.sqrt(self.cfg.output_size)
        pos_emb = relative_positions(length, self.cfg.output_size, x.device, x.dtype)
        allowed = block_causal_mask(length, self.cfg.block_size, x.device)
        for layer in self.encoders:
            x = layer(x, pos_emb, allowed)
        return self.after_norm(x)


class InterpolateRegulator(nn.Module):
    """Nearest upsampling from units to mel frames, then conv k3 + GroupNorm + Mish stages and a conv k1."""

    def __init__(self, channels: int, blocks: int, groups: int):
        super().__init__()
        layers = []
        for _ in range(blocks):
            layers += [nn.Conv1d(channels, channels, 3, 1, 1), nn.GroupNorm(groups, channels), nn.Mish()]
        layers.append(nn.Conv1d(channels, channels, 1, 1))
        self.model = nn.Sequential(*layers)

    def forward(self, h: torch.Tensor, n_frames: int, index: torch.Tensor | None = None) -> torch.Tensor:
        """h [B, N, C] -> mu [B, C, T]. `index` (which row each frame copies) overrides the reference's
        nearest mapping, which stretches N rows over exactly T frames."""
        if index is None:
            index = nearest_source_index(h.size(1), n_frames)
        return self.model(h[:, index.to(h.device)].transpose(1, 2))


class FlowModel(nn.Module):
    """The released `flow.pt` module (units -> mel), with the speaker input fixed to the zero embedding."""

    def __init__(self, cfg: FlowConfig):
        super().__init__()
        self.cfg = cfg
        self.input_embedding = nn.Embedding(cfg.vocab_size, cfg.input_size)
        self.spk_embed_affine_layer = nn.Linear(cfg.spk_embed_dim, cfg.output_size)
        self.encoder = BlockConformerEncoder(cfg.input_size, cfg.encoder)
        self.encoder_proj = nn.Linear(cfg.encoder.output_size, cfg.output_size)
        self.length_regulator = InterpolateRegulator(cfg.output_size, cfg.regulator_blocks, cfg.regulator_groups)
        self.decoder = ConditionalFlowMatching(cfg)

    def speaker_condition(self, batch: int = 1) -> torch.Tensor:
        """The reference passes an all-zero x-vector; normalising zero keeps it zero, leaving the bias."""
        zero = torch.zeros(batch, self.cfg.spk_embed_dim, device=self.spk_embed_affine_layer.weight.device)
        return self.spk_embed_affine_layer(F.normalize(zero, dim=1))

    def encode(self, units: torch.Tensor) -> torch.Tensor:
        """units [B, N] int -> encoder output [B, N, D]."""
        return self.encoder(self.input_embedding(units.clamp(min=0)))

    def condition(self, units: torch.Tensor, n_frames: int, index: torch.Tensor | None = None) -> torch.Tensor:
        """units [B, N] -> mu [B, n_mels, n_frames]."""
        return self.length_regulator(self.encoder_proj(self.encode(units)), n_frames, index)

    def forward(self, units: torch.Tensor, n_frames: int, noise: torch.Tensor,
                cond: torch.Tensor | None = None, index: torch.Tensor | None = None) -> torch.Tensor:
        """units [B, N], noise [B, n_mels, n_frames] (the ODE's start) -> mel [B, n_mels, n_frames]."""
        mu = self.condition(units, n_frames, index)
        return self.decoder(mu, self.speaker_condition(units.size(0)), noise, cond=cond)
