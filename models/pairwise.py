"""Pairwise comparisons: lift elements to pairs with a shared MLP, reduce pairs back to elements.

The lift computes ``h[i, j] = MLP(x_i, x_j, x_i - x_j)``. Its first layer is linear in the three
inputs, so it is evaluated per element (``A x_i + B x_j``) and broadcast: the ``(n, n, 3C)`` input
is never built. ``PairwiseComparison`` fuses lift and reduction and can process the rows ``i`` in
chunks, recomputing each chunk in the backward pass, so that its memory is ``O(chunk · n)`` instead
of ``O(n^2)`` per channel.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from symlight.core.groups import PermutationGroup
from symlight.core.rep import Rep, entry_mask

from .activations import check_activation, make_activation
from .base import EquivariantModule
from .pooling import REDUCTIONS, Reduction, check_pooling, masked_pool

__all__ = ["PairMLP", "PairwiseComparison", "PairwiseLift", "PairwiseReduce", "PairwiseSimilarity"]


class PairMLP(nn.Module):
    """The MLP ``(x_i, x_j, x_i - x_j) -> h[i, j]`` shared by every pair.

    ``first(x)`` returns the per-element halves of the first layer, ``rest(h)`` the remaining
    layers applied to ``h[i, j] = a_i + b_j``.
    """

    def __init__(
        self, in_channels: int, out_channels: int, hidden: int, depth: int, activation: str
    ) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        check_activation(activation)
        width = hidden if depth > 1 else out_channels
        self.input = nn.Linear(3 * in_channels, width)  # on (x_i, x_j, x_i - x_j)
        layers: list[nn.Module] = []
        for i in range(depth - 1):
            layers += [
                make_activation(activation),
                nn.Linear(hidden, out_channels if i == depth - 2 else hidden),
            ]
        self.hidden = nn.Sequential(*layers)
        self.in_channels = in_channels

    def first(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(a, b)`` with ``a_i + b_j`` the first layer on ``(x_i, x_j, x_i - x_j)``."""
        w_i, w_j, w_diff = self.input.weight.split(self.in_channels, dim=1)
        a = nn.functional.linear(x, w_i + w_diff, self.input.bias)
        b = nn.functional.linear(x, w_j - w_diff)
        return a, b

    def rest(self, h: Tensor) -> Tensor:
        return self.hidden(h)

    def pairs(self, a: Tensor, b: Tensor) -> Tensor:
        """``h[i, j]`` for the rows in ``a`` (``(B, r, H)``) against all of ``b`` (``(B, n, H)``)."""
        return self.rest(a[:, :, None, :] + b[:, None, :, :])


class PairwiseLift(EquivariantModule):
    """Lift from elements to pairs by a shared MLP, equivariant to S_n: ``f(P·x) = P·f(x)·Pᵀ``.

    ``y[i, j] = MLP(x_i, x_j, x_i - x_j)``, diagonal included.
    x: ``(B, n, in_channels) -> (B, n, n, out_channels)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        hidden: int = 64,
        depth: int = 2,
        activation: str = "relu",
        group: PermutationGroup | str | None = None,
    ) -> None:
        super().__init__(Rep(in_channels, 1, group), Rep(out_channels, 2, group))
        self.mlp = PairMLP(in_channels, out_channels, hidden, depth, activation)

    @classmethod
    def from_spec(
        cls,
        rep_in: Rep,
        channels: int | None = None,
        hidden: int = 64,
        depth: int = 2,
        activation: str = "relu",
    ) -> PairwiseLift:
        """The lift of input ``rep_in`` (of order 1); output ``channels`` default to the input's."""
        out = channels or rep_in.channels
        return cls(rep_in.channels, out, hidden, depth, activation, rep_in.group)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        a, b = self.mlp.first(self.rep_in.zero_padding(x, mask))
        return self.rep_out.zero_padding(self.mlp.pairs(a, b), mask)


class PairwiseSimilarity(EquivariantModule):
    """Scaled cosine similarity of every pair, equivariant to S_n: ``f(P·x) = P·f(x)·Pᵀ``.

    ``y[i, j, h] = s_h · cos(W_h x_i, W_h x_j)``, diagonal included: ``out_channels`` heads, each a
    learned projection ``W_h`` to ``dim`` features and a learned scale ``s_h`` (initially
    ``scale``). The output is bounded by ``|s_h|`` whatever the size of the inputs, and it
    compares elements from the first step of training: followed by ``reduce: mean``, an element
    unlike the others gets a low value, which makes it a head for finding the odd one out.
    x: ``(B, n, in_channels) -> (B, n, n, out_channels)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int = 1,
        dim: int = 32,
        scale: float = 10.0,
        group: PermutationGroup | str | None = None,
    ) -> None:
        if out_channels < 1 or dim < 1:
            raise ValueError(f"need out_channels >= 1 and dim >= 1, got {out_channels}, {dim}")
        super().__init__(Rep(in_channels, 1, group), Rep(out_channels, 2, group))
        self.project = nn.Linear(in_channels, out_channels * dim, bias=False)
        self.scale = nn.Parameter(torch.full((out_channels,), float(scale)))
        self.dim = dim

    @classmethod
    def from_spec(
        cls, rep_in: Rep, channels: int | None = None, dim: int = 32, scale: float = 10.0
    ) -> PairwiseSimilarity:
        """The similarity of input ``rep_in`` (order 1); ``channels`` (heads) default to the
        input's channels.
        """
        return cls(rep_in.channels, channels or rep_in.channels, dim, scale, rep_in.group)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        batch, n = x.shape[:2]
        z = self.project(self.rep_in.zero_padding(x, mask))
        z = nn.functional.normalize(z.view(batch, n, self.out_channels, self.dim), dim=-1)
        return self.rep_out.zero_padding(torch.einsum("bihd,bjhd->bijh", z, z) * self.scale, mask)

    def options_repr(self) -> str:
        return f"dim={self.dim}"


class PairwiseReduce(EquivariantModule):
    """Reduction from pairs to elements over ``j``, equivariant to S_n: ``f(P·x·Pᵀ) = P·f(x)``.

    ``y_i = reduce_j x[i, j]`` over the real ``j`` with ``sum``, ``mean``, ``max`` or ``min``.
    x: ``(B, n, n, C) -> (B, n, C)``; ``channels`` is ``C`` (None: any).
    """

    def __init__(
        self,
        reduce: Reduction = "max",
        channels: int | None = None,
        group: PermutationGroup | str | None = None,
    ) -> None:
        super().__init__(Rep(channels, 2, group), Rep(channels, 1, group))
        self.reduce = check_pooling(reduce, REDUCTIONS)

    @classmethod
    def from_spec(cls, rep_in: Rep, reduce: Reduction = "max") -> PairwiseReduce:
        """The reduction of input ``rep_in`` (order 2) to order 1, same channels."""
        return cls(reduce, rep_in.channels, rep_in.group)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        return self.rep_out.zero_padding(masked_pool(x, _columns(mask), 2, self.reduce), mask)

    def options_repr(self) -> str:
        return self.reduce


class PairwiseComparison(EquivariantModule):
    """Compare every element with every other, equivariant to S_n: ``f(P·x) = P·f(x)``.

    ``y_i = reduce_j MLP(x_i, x_j, x_i - x_j)`` over the real ``j`` (``sum``, ``mean``, ``max`` or
    ``min``): a ``PairwiseLift`` followed by a ``PairwiseReduce``, fused. With ``chunk_size``, rows
    are processed ``chunk_size`` at a time and recomputed in the backward pass, so the pair
    activations never exist for all ``n^2`` pairs at once.
    x: ``(B, n, in_channels) -> (B, n, out_channels)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        hidden: int = 64,
        depth: int = 2,
        activation: str = "relu",
        reduce: Reduction = "max",
        chunk_size: int | None = None,
        group: PermutationGroup | str | None = None,
    ) -> None:
        super().__init__(Rep(in_channels, 1, group), Rep(out_channels, 1, group))
        if chunk_size is not None and chunk_size < 1:
            raise ValueError(f"chunk_size must be positive or None, got {chunk_size}")
        self.mlp = PairMLP(in_channels, out_channels, hidden, depth, activation)
        self.reduce = check_pooling(reduce, REDUCTIONS)
        self.chunk_size = chunk_size

    @classmethod
    def from_spec(
        cls,
        rep_in: Rep,
        channels: int | None = None,
        hidden: int = 64,
        depth: int = 2,
        activation: str = "relu",
        reduce: Reduction = "max",
        chunk_size: int | None = None,
    ) -> PairwiseComparison:
        """The comparison for input ``rep_in`` (order 1); ``channels`` default to the input's."""
        out = channels or rep_in.channels
        return cls(
            rep_in.channels, out, hidden, depth, activation, reduce, chunk_size, rep_in.group
        )

    def _rows(self, a: Tensor, b: Tensor, columns: Tensor | None) -> Tensor:
        return masked_pool(self.mlp.pairs(a, b), columns, 2, self.reduce)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        a, b = self.mlp.first(self.rep_in.zero_padding(x, mask))
        columns = _columns(mask)
        n = x.shape[1]
        if self.chunk_size is None or self.chunk_size >= n:
            return self.rep_out.zero_padding(self._rows(a, b, columns), mask)
        chunks = []
        for start in range(0, n, self.chunk_size):
            rows = a[:, start : start + self.chunk_size]
            if torch.is_grad_enabled():
                chunks.append(checkpoint(self._rows, rows, b, columns, use_reentrant=False))
            else:
                chunks.append(self._rows(rows, b, columns))
        return self.rep_out.zero_padding(torch.cat(chunks, dim=1), mask)

    def options_repr(self) -> str:
        chunk = f", chunk_size={self.chunk_size}" if self.chunk_size else ""
        return f"{self.reduce}{chunk}"


def _columns(mask: Tensor | None) -> Tensor | None:
    """``(B, n) -> (B, 1, n, 1)``: the real ``j`` of ``x[i, j]``, for a reduction over ``j``."""
    keep = entry_mask(mask, 1)
    return None if keep is None else keep[:, None]
