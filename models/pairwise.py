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

from .base import EquivariantModule, mask_output
from .pointwise import ACTIVATIONS
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
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {', '.join(ACTIVATIONS)}; got {activation!r}"
            )
        width = hidden if depth > 1 else out_channels
        self.input = nn.Linear(3 * in_channels, width)  # on (x_i, x_j, x_i - x_j)
        layers: list[nn.Module] = []
        for i in range(depth - 1):
            layers += [
                ACTIVATIONS[activation](),
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
    ) -> None:
        super().__init__(1, 2)
        self.mlp = PairMLP(in_channels, out_channels, hidden, depth, activation)
        self.in_channels, self.out_channels = in_channels, out_channels

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        a, b = self.mlp.first(mask_output(x, mask, 1))
        return mask_output(self.mlp.pairs(a, b), mask, 2)

    def extra_repr(self) -> str:
        return f"{self.in_channels}x1 -> {self.out_channels}x2 | {self.num_weights()} weights"


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
        self, in_channels: int, out_channels: int = 1, dim: int = 32, scale: float = 10.0
    ) -> None:
        super().__init__(1, 2)
        if out_channels < 1 or dim < 1:
            raise ValueError(f"need out_channels >= 1 and dim >= 1, got {out_channels}, {dim}")
        self.project = nn.Linear(in_channels, out_channels * dim, bias=False)
        self.scale = nn.Parameter(torch.full((out_channels,), float(scale)))
        self.in_channels, self.out_channels, self.dim = in_channels, out_channels, dim

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        batch, n = x.shape[:2]
        z = self.project(mask_output(x, mask, 1)).view(batch, n, self.out_channels, self.dim)
        z = nn.functional.normalize(z, dim=-1)
        return mask_output(torch.einsum("bihd,bjhd->bijh", z, z) * self.scale, mask, 2)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}x1 -> {self.out_channels}x2, dim={self.dim} "
            f"| {self.num_weights()} weights"
        )


class PairwiseReduce(EquivariantModule):
    """Reduction from pairs to elements over ``j``, equivariant to S_n: ``f(P·x·Pᵀ) = P·f(x)``.

    ``y_i = reduce_j x[i, j]`` over the real ``j`` with ``sum``, ``mean``, ``max`` or ``min``.
    x: ``(B, n, n, C) -> (B, n, C)``.
    """

    def __init__(self, reduce: Reduction = "max") -> None:
        super().__init__(2, 1)
        self.reduce = check_pooling(reduce, REDUCTIONS)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        columns = None if mask is None else mask[:, None, :, None]
        return mask_output(masked_pool(x, columns, 2, self.reduce), mask, 1)

    def extra_repr(self) -> str:
        return f"{self.reduce}, 2 -> 1"


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
    ) -> None:
        super().__init__(1, 1)
        if chunk_size is not None and chunk_size < 1:
            raise ValueError(f"chunk_size must be positive or None, got {chunk_size}")
        self.mlp = PairMLP(in_channels, out_channels, hidden, depth, activation)
        self.reduce = check_pooling(reduce, REDUCTIONS)
        self.chunk_size = chunk_size
        self.in_channels, self.out_channels = in_channels, out_channels

    def _rows(self, a: Tensor, b: Tensor, columns: Tensor | None) -> Tensor:
        return masked_pool(self.mlp.pairs(a, b), columns, 2, self.reduce)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        a, b = self.mlp.first(mask_output(x, mask, 1))
        columns = None if mask is None else mask[:, None, :, None]
        n = x.shape[1]
        if self.chunk_size is None or self.chunk_size >= n:
            return mask_output(self._rows(a, b, columns), mask, 1)
        chunks = []
        for start in range(0, n, self.chunk_size):
            rows = a[:, start : start + self.chunk_size]
            if torch.is_grad_enabled():
                chunks.append(checkpoint(self._rows, rows, b, columns, use_reentrant=False))
            else:
                chunks.append(self._rows(rows, b, columns))
        return mask_output(torch.cat(chunks, dim=1), mask, 1)

    def extra_repr(self) -> str:
        chunk = f", chunk_size={self.chunk_size}" if self.chunk_size else ""
        return (
            f"{self.in_channels}x1 -> {self.out_channels}x1, {self.reduce}{chunk}"
            f" | {self.num_weights()} weights"
        )
