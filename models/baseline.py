"""The non-equivariant baseline: an MLP over the flattened, fixed-size set."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .base import SetModule, mask_output

__all__ = ["MLPBaseline"]


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
        super().__init__(1, out_order)
        if out_order not in (0, 1):
            raise ValueError(f"MLPBaseline returns order 0 or 1, got out_order={out_order}")
        self.n = n
        self.out_channels = out_channels
        width, layers = n * in_channels, []
        for _ in range(depth - 1):
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        layers.append(nn.Linear(width, out_channels * (n if out_order == 1 else 1)))
        self.mlp = nn.Sequential(*layers)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        batch, size = x.shape[:2]
        if size > self.n:
            raise ValueError(f"MLPBaseline was built for sets of at most n={self.n}, got {size}")
        if mask is not None:
            x = mask_output(x, mask, 1)
        x = torch.nn.functional.pad(x, (0, 0, 0, self.n - size))
        y = self.mlp(x.flatten(1))
        if self.out_order == 0:
            return y
        return mask_output(y.view(batch, self.n, self.out_channels)[:, :size], mask, 1)
