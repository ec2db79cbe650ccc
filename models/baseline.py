"""Non-equivariant baselines: an MLP over the flattened set, and the DeepSets paper's pooled one."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from symlight.core.rep import Rep, entry_mask

from .base import SetModule
from .pooling import check_pooling, masked_pool

__all__ = ["MLPBaseline", "PooledBaseline"]


class MLPBaseline(SetModule):
    """MLP on the concatenation of a set's ``n`` elements: *not* equivariant, a point of comparison.

    A :class:`~symlight.models.SetModule` with no symmetry: it sees element positions, so it
    must learn the symmetry from data. It takes sets of at most
    ``n`` elements (smaller ones are zero-padded) and returns order ``out_order`` (0 or 1).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        out_order: int = 1,
        n: int = 10,
        hidden: int = 256,
        depth: int = 3,
    ) -> None:
        if out_order not in (0, 1):
            raise ValueError(f"MLPBaseline returns order 0 or 1, got out_order={out_order}")
        super().__init__(Rep(in_channels, 1), Rep(out_channels, out_order))
        self.n = n
        self.mlp = _slot_mlp(n * in_channels, hidden, depth, out_channels * (n if out_order else 1))

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        batch, size = x.shape[:2]
        if size > self.n:
            raise ValueError(f"MLPBaseline was built for sets of at most n={self.n}, got {size}")
        x = self.rep_in.zero_padding(x, mask)
        x = torch.nn.functional.pad(x, (0, 0, 0, self.n - size))
        y = self.mlp(x.flatten(1))
        if self.out_order == 0:
            return y
        return self.rep_out.zero_padding(y.view(batch, self.n, self.out_channels)[:, :size], mask)

    def options_repr(self) -> str:
        return f"n={self.n}"


class PooledBaseline(SetModule):
    """The DeepSets paper's non-equivariant baseline: pooled set features, then an MLP to ``n`` slots.

    The elements are pooled over the set (an invariant summary), fully connected layers map the
    summary to ``n`` outputs per channel, and output ``i`` is read as the logit of the element at
    position ``i``: a fixed ``n``-way softmax whose slots are tied to positions, *not* to elements.
    So it is not equivariant (permuting a set leaves its outputs where they were), a point of
    comparison. With ``out_order=0`` it returns the invariant MLP output instead. Sets of at most
    ``n`` elements; smaller ones use the first slots.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        out_order: int = 1,
        n: int = 16,
        hidden: int = 256,
        depth: int = 2,
        pooling: str = "max",
    ) -> None:
        if out_order not in (0, 1):
            raise ValueError(f"PooledBaseline returns order 0 or 1, got out_order={out_order}")
        if n < 1 or hidden < 1 or depth < 1:
            raise ValueError(f"need n, hidden and depth >= 1, got {n}, {hidden}, {depth}")
        super().__init__(Rep(in_channels, 1), Rep(out_channels, out_order))
        self.n = n
        self.pooling = check_pooling(pooling)
        self.mlp = _slot_mlp(in_channels, hidden, depth, out_channels * (n if out_order else 1))

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        batch, size = x.shape[:2]
        if size > self.n and self.out_order == 1:
            raise ValueError(f"PooledBaseline was built for sets of at most n={self.n}, got {size}")
        y = self.mlp(masked_pool(x, entry_mask(mask, 1), 1, self.pooling))
        if self.out_order == 0:
            return y
        return self.rep_out.zero_padding(y.view(batch, self.n, self.out_channels)[:, :size], mask)

    def options_repr(self) -> str:
        return f"n={self.n}, pooling={self.pooling}"


def _slot_mlp(width: int, hidden: int, depth: int, outputs: int) -> nn.Sequential:
    """``depth`` fully connected layers with ReLU between them, ``width -> outputs``."""
    layers: list[nn.Module] = []
    for _ in range(depth - 1):
        layers += [nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    layers.append(nn.Linear(width, outputs))
    return nn.Sequential(*layers)
