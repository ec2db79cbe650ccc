"""Set attention (Lee et al. 2019, Set Transformer): SAB, ISAB and PMA, mask-aware.

Attention over a set is equivariant in its queries and invariant in its keys: permuting the keys
(with their values and mask) permutes the softmax terms and leaves their sum unchanged. Padded keys
get the dtype's finite minimum as score and an attention weight of exactly zero; a query with no
real key attends to nothing (its attention output is zero, not NaN). Scores are scaled by
``1/sqrt(head_dim)`` per head.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .base import EquivariantModule, mask_output

__all__ = ["ISAB", "PMA", "SAB", "MultiheadAttention", "MAB"]


class MultiheadAttention(nn.Module):
    """Multi-head attention of ``queries`` ``(B, m, q_channels)`` over ``keys`` ``(B, n, k_channels)``.

    Returns ``(B, m, channels)``. ``key_mask`` ``(B, n)`` marks the real keys; queries without any
    real key get zero attention output.
    """

    def __init__(self, q_channels: int, k_channels: int, channels: int, heads: int = 4) -> None:
        super().__init__()
        if channels % heads:
            raise ValueError(f"channels ({channels}) must be a multiple of heads ({heads})")
        self.heads, self.head_dim = heads, channels // heads
        self.q = nn.Linear(q_channels, channels)
        self.k = nn.Linear(k_channels, channels)
        self.v = nn.Linear(k_channels, channels)
        self.out = nn.Linear(channels, channels)

    def _split(self, x: Tensor) -> Tensor:
        batch, size, _ = x.shape
        return x.view(batch, size, self.heads, self.head_dim).transpose(1, 2)

    def forward(self, queries: Tensor, keys: Tensor, key_mask: Tensor | None = None) -> Tensor:
        q, k, v = self._split(self.q(queries)), self._split(self.k(keys)), self._split(self.v(keys))
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim)  # (B, heads, m, n)
        if key_mask is not None:
            real = key_mask[:, None, None, :]
            scores = scores.masked_fill(~real, torch.finfo(scores.dtype).min)
            weights = torch.softmax(scores, dim=-1) * real  # all zero when no key is real
        else:
            weights = torch.softmax(scores, dim=-1)
        attended = (weights @ v).transpose(1, 2).flatten(2)  # (B, m, channels)
        return self.out(attended)


class MAB(nn.Module):
    """Multihead attention block: ``H = LN(Q' + Att(Q, K)); out = LN(H + FF(H))``.

    ``Q'`` is the query projection, so ``q_channels`` may differ from ``channels``.
    """

    def __init__(
        self, q_channels: int, k_channels: int, channels: int, heads: int, layer_norm: bool
    ) -> None:
        super().__init__()
        self.attention = MultiheadAttention(q_channels, k_channels, channels, heads)
        self.ff = nn.Sequential(
            nn.Linear(channels, channels), nn.ReLU(), nn.Linear(channels, channels)
        )
        self.norm1 = nn.LayerNorm(channels) if layer_norm else nn.Identity()
        self.norm2 = nn.LayerNorm(channels) if layer_norm else nn.Identity()

    def forward(self, queries: Tensor, keys: Tensor, key_mask: Tensor | None = None) -> Tensor:
        h = self.norm1(self.attention.q(queries) + self.attention(queries, keys, key_mask))
        return self.norm2(h + self.ff(h))


class _Attention(EquivariantModule):
    def __init__(self, in_order: int, out_order: int, in_channels: int, out_channels: int) -> None:
        super().__init__(in_order, out_order)
        self.in_channels, self.out_channels = in_channels, out_channels

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}x{int(self.in_order)} -> {self.out_channels}x{int(self.out_order)}"
            f", heads={self.heads} | {self.num_weights()} weights"
        )


class SAB(_Attention):
    """Set self-attention block, equivariant to S_n: ``f(P·x) = P·f(x)``.

    Every element attends to every real element of its set: ``MAB(x, x)``, ``O(n^2)`` per layer.
    x: ``(B, n, in_channels) -> (B, n, out_channels)``.
    """

    def __init__(
        self, in_channels: int, out_channels: int, heads: int = 4, layer_norm: bool = True
    ) -> None:
        super().__init__(1, 1, in_channels, out_channels)
        self.heads = heads
        self.mab = MAB(in_channels, in_channels, out_channels, heads, layer_norm)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        x = mask_output(x, mask, 1)
        return mask_output(self.mab(x, x, mask), mask, 1)


class ISAB(_Attention):
    """Induced set attention block, equivariant to S_n: ``f(P·x) = P·f(x)``.

    ``inducing`` learned points attend to the set (an invariant summary ``h``), then every
    element attends to ``h``: ``MAB(x, MAB(I, x))``, ``O(n · inducing)`` per layer.
    x: ``(B, n, in_channels) -> (B, n, out_channels)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        heads: int = 4,
        inducing: int = 16,
        layer_norm: bool = True,
    ) -> None:
        super().__init__(1, 1, in_channels, out_channels)
        self.heads = heads
        self.inducing = nn.Parameter(torch.randn(inducing, out_channels) / math.sqrt(out_channels))
        self.summarise = MAB(out_channels, in_channels, out_channels, heads, layer_norm)
        self.broadcast = MAB(in_channels, out_channels, out_channels, heads, layer_norm)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        x = mask_output(x, mask, 1)
        points = self.inducing.expand(x.shape[0], -1, -1)
        summary = self.summarise(points, x, mask)  # (B, inducing, out_channels), invariant
        return mask_output(self.broadcast(x, summary), mask, 1)


class PMA(_Attention):
    """Pooling by multihead attention, invariant to S_n: ``f(P·x) = f(x)``.

    ``seeds`` learned queries attend to the real elements of the set; their outputs are
    concatenated. A fully padded set pools to zeros, as every masked pooling does.
    x: ``(B, n, in_channels) -> (B, seeds · out_channels)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        heads: int = 4,
        seeds: int = 1,
        layer_norm: bool = True,
    ) -> None:
        super().__init__(1, 0, in_channels, out_channels * seeds)
        self.heads = heads
        self.seeds = nn.Parameter(torch.randn(seeds, out_channels) / math.sqrt(out_channels))
        self.pool = MAB(out_channels, in_channels, out_channels, heads, layer_norm)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        x = mask_output(x, mask, 1)
        seeds = self.seeds.expand(x.shape[0], -1, -1)
        pooled = self.pool(seeds, x, mask).flatten(1)
        return pooled if mask is None else pooled * mask.any(1, keepdim=True)
