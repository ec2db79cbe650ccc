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

from symlight.core.groups import PermutationGroup
from symlight.core.rep import Rep

from .base import EquivariantModule

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
    heads: int

    def options_repr(self) -> str:
        return f"heads={self.heads}"


class SAB(_Attention):
    """Set self-attention block, equivariant to S_n: ``f(P·x) = P·f(x)``.

    Every element attends to every real element of its set: ``MAB(x, x)``, ``O(n^2)`` per layer.
    x: ``(B, n, in_channels) -> (B, n, out_channels)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        heads: int = 4,
        layer_norm: bool = True,
        group: PermutationGroup | str | None = None,
    ) -> None:
        super().__init__(Rep(in_channels, 1, group), Rep(out_channels, 1, group))
        self.heads = heads
        self.mab = MAB(in_channels, in_channels, out_channels, heads, layer_norm)

    @classmethod
    def from_spec(
        cls, rep_in: Rep, channels: int | None = None, heads: int = 4, layer_norm: bool = True
    ) -> SAB:
        """The block for input ``rep_in`` (of order 1); ``channels`` default to the input's."""
        out = channels or rep_in.channels
        return cls(rep_in.channels, out, heads, layer_norm, rep_in.group)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        x = self.rep_in.zero_padding(x, mask)
        return self.rep_out.zero_padding(self.mab(x, x, mask), mask)


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
        group: PermutationGroup | str | None = None,
    ) -> None:
        super().__init__(Rep(in_channels, 1, group), Rep(out_channels, 1, group))
        self.heads = heads
        self.inducing = nn.Parameter(torch.randn(inducing, out_channels) / math.sqrt(out_channels))
        self.summarise = MAB(out_channels, in_channels, out_channels, heads, layer_norm)
        self.broadcast = MAB(in_channels, out_channels, out_channels, heads, layer_norm)

    @classmethod
    def from_spec(
        cls,
        rep_in: Rep,
        channels: int | None = None,
        heads: int = 4,
        inducing: int = 16,
        layer_norm: bool = True,
    ) -> ISAB:
        """The block for input ``rep_in`` (of order 1); ``channels`` default to the input's."""
        out = channels or rep_in.channels
        return cls(rep_in.channels, out, heads, inducing, layer_norm, rep_in.group)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        x = self.rep_in.zero_padding(x, mask)
        points = self.inducing.expand(x.shape[0], -1, -1)
        summary = self.summarise(points, x, mask)  # (B, inducing, out_channels), invariant
        return self.rep_out.zero_padding(self.broadcast(x, summary), mask)


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
        group: PermutationGroup | str | None = None,
    ) -> None:
        super().__init__(Rep(in_channels, 1, group), Rep(out_channels * seeds, 0, group))
        self.heads = heads
        self.seeds = nn.Parameter(torch.randn(seeds, out_channels) / math.sqrt(out_channels))
        self.pool = MAB(out_channels, in_channels, out_channels, heads, layer_norm)

    @classmethod
    def from_spec(
        cls,
        rep_in: Rep,
        channels: int | None = None,
        heads: int = 4,
        seeds: int = 1,
        layer_norm: bool = True,
    ) -> PMA:
        """The pooling of input ``rep_in`` (of order 1); ``channels`` per seed default to the
        input's.
        """
        out = channels or rep_in.channels
        return cls(rep_in.channels, out, heads, seeds, layer_norm, rep_in.group)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        x = self.rep_in.zero_padding(x, mask)
        seeds = self.seeds.expand(x.shape[0], -1, -1)
        pooled = self.pool(seeds, x, mask).flatten(1)
        return pooled if mask is None else pooled * mask.any(1, keepdim=True)
