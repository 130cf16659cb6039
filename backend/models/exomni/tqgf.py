"""TQGF: token-as-query gated fusion.

Queries (text-token embeddings in the speech generator, unit features in the blendshape generator)
attend over a context sequence (lifted LLM states, speech-generator states). Each layer is a gated
cross-attention with a pre-norm on both sides and a residual, then a pre-norm GELU feed-forward with
a residual; a final LayerNorm closes the stack. Attribute names follow the released checkpoint
(`layers.<i>.0.*` attention, `layers.<i>.1.*` feed-forward, `norm`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class GatedCrossAttention(nn.Module):
    def __init__(self, dim: int, dim_head: int, heads: int):
        super().__init__()
        self.heads = heads
        self.dim_head = dim_head
        inner = dim_head * heads
        self.norm_text = nn.LayerNorm(dim)  # context side
        self.norm_query = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim, inner * 2, bias=False)  # keys first, then values
        self.to_out = nn.Linear(inner, dim, bias=False)
        self.gate_proj = nn.Linear(dim, inner, bias=False)  # one gate per head and channel

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        return x.view(b, n, self.heads, self.dim_head).transpose(1, 2)

    def forward(self, context: torch.Tensor, queries: torch.Tensor,
                context_mask: torch.Tensor | None = None) -> torch.Tensor:
        """context [B, M, D], queries [B, N, D], context_mask [B, M] (True = may be attended)."""
        ctx = self.norm_text(context)
        qn = self.norm_query(queries)
        q = self._split_heads(self.to_q(qn))
        k, v = self.to_kv(ctx).chunk(2, dim=-1)
        k, v = self._split_heads(k), self._split_heads(v)
        mask = None if context_mask is None else context_mask[:, None, None, :].to(torch.bool)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # scale dim_head^-0.5
        out = out * torch.sigmoid(self._split_heads(self.gate_proj(qn)))
        b, _, n, _ = out.shape
        return self.to_out(out.transpose(1, 2).reshape(b, n, self.heads * self.dim_head))


def feed_forward(dim: int, mult: int = 4) -> nn.Sequential:
    inner = int(dim * mult)
    return nn.Sequential(
        nn.LayerNorm(dim),
        nn.Linear(dim, inner, bias=False),
        nn.GELU(),  # exact (erf) GELU
        nn.Linear(inner, dim, bias=False),
    )


class TQGF(nn.Module):
    def __init__(self, dim: int, depth: int = 2, dim_head: int = 64, heads: int = 8, ff_mult: int = 4):
        super().__init__()
        self.layers = nn.ModuleList(
            nn.ModuleList([GatedCrossAttention(dim, dim_head, heads), feed_forward(dim, ff_mult)])
            for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim)

    def forward(self, context: torch.Tensor, queries: torch.Tensor,
                context_mask: torch.Tensor | None = None) -> torch.Tensor:
        for attention, ff in self.layers:
            queries = queries + attention(context, queries, context_mask)
            queries = queries + ff(queries)
        return self.norm(queries)
