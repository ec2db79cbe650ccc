"""Complete bases of permutation-equivariant linear maps between orders 0 and 1.

A linear map from order k to order l that commutes with every permutation is a combination of
Bell(k + l) basis maps (Maron et al. 2019), each one a pooling over some set axes followed by a
broadcast. ``EquivariantLinear`` evaluates the basis maps of its order pair, stacks them along the
channel axis and mixes them with one ``nn.Linear``: no dense ``n^(k+l)`` matrix is ever built, so
the same weights serve every set size.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from .base import EquivariantModule, mask_output
from .pooling import Pooling, check_pooling, element_mask, masked_pool

__all__ = ["BASES", "EquivariantLinear", "basis_size"]

Basis = Callable[[Tensor, "Tensor | None", str, int], list[Tensor]]
"""(x, mask, pooling, n) -> the basis maps applied to x, each of the output's shape."""


def _basis_0_0(x: Tensor, mask: Tensor | None, pooling: str, n: int) -> list[Tensor]:
    return [x]


def _basis_0_1(x: Tensor, mask: Tensor | None, pooling: str, n: int) -> list[Tensor]:
    return [x[:, None, :].expand(-1, n, -1)]


def _basis_1_0(x: Tensor, mask: Tensor | None, pooling: str, n: int) -> list[Tensor]:
    return [masked_pool(x, element_mask(mask), 1, pooling)]


def _basis_1_1(x: Tensor, mask: Tensor | None, pooling: str, n: int) -> list[Tensor]:
    pooled = masked_pool(x, element_mask(mask), 1, pooling, keepdim=True)
    return [x, pooled.expand_as(x)]


BASES: dict[tuple[int, int], Basis] = {
    (0, 0): _basis_0_0,
    (0, 1): _basis_0_1,
    (1, 0): _basis_1_0,
    (1, 1): _basis_1_1,
}
"""Basis maps for each ``(in_order, out_order)``; the number of maps is Bell(k + l)."""


def basis_size(in_order: int, out_order: int) -> int:
    """Number of basis maps from ``in_order`` to ``out_order`` (Bell(k + l) for n large enough)."""
    x = torch.zeros((1,) + (1,) * in_order + (1,))
    return len(BASES[(in_order, out_order)](x, None, "sum", 1))


class EquivariantLinear(EquivariantModule):
    """Linear map between orders, equivariant to S_n: ``f(P·x) = P·f(x)``.

    The most general such map: every basis map of the order pair, each with its own
    ``in_channels x out_channels`` weights, plus a bias that is itself equivariant (the image of
    a constant under the ``0 -> out_order`` basis). Shapes: ``(B, [n, [n,]] in_channels) ->
    (B, [n, [n,]] out_channels)`` with as many ``n`` as the order.
    """

    def __init__(
        self,
        in_order: int,
        out_order: int,
        in_channels: int,
        out_channels: int,
        pooling: Pooling = "mean",
        bias: bool = True,
    ) -> None:
        super().__init__(in_order, out_order)
        if (int(self.in_order), int(self.out_order)) not in BASES:
            raise ValueError(
                f"no equivariant basis from order {in_order} to {out_order}; "
                f"available: {sorted(BASES)}"
            )
        self.pooling = check_pooling(pooling)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self._basis = BASES[(int(self.in_order), int(self.out_order))]
        self.num_basis = basis_size(self.in_order, self.out_order)
        self.mix = nn.Linear(self.num_basis * in_channels, out_channels, bias=False)
        self.bias = (
            nn.Parameter(torch.zeros(basis_size(0, self.out_order), out_channels)) if bias else None
        )

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        if self.in_order > 0:
            n = x.shape[1]
        elif mask is not None:
            n = mask.shape[1]
        elif self.out_order > 0:
            raise ValueError(f"{self.extra_repr()}: broadcasting to a set needs the (B, n) mask")
        else:
            n = 1
        terms = self._basis(x, mask, self.pooling, n)
        y = self.mix(torch.cat(terms, dim=-1))
        if self.bias is not None:
            ones = y.new_ones(y.shape[0], 1)
            constants = BASES[(0, int(self.out_order))](ones, mask, self.pooling, n)
            y = y + sum(b * c for b, c in zip(self.bias, constants))
        return mask_output(y, mask, self.out_order)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}x{int(self.in_order)} -> {self.out_channels}x{int(self.out_order)}, "
            f"pooling={self.pooling} | {self.num_weights()} weights"
        )
