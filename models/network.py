"""Typed composition of equivariant layers, checked when it is built."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

from .base import EquivariantModule

__all__ = ["EquivariantSequential"]


class EquivariantSequential(EquivariantModule):
    """Layers applied in turn; equivariant to S_n because each layer is.

    Each layer's ``out_order`` must equal the next one's ``in_order``; a mismatch raises a
    ValueError naming both positions, both layers and their orders. The ``(B, n)`` mask is passed
    to every layer (an all-True one is made when none is given, so that layers that broadcast
    an invariant back to the set know n).
    """

    def __init__(self, layers: Iterable[EquivariantModule]) -> None:
        layers = list(layers)
        if not layers:
            raise ValueError("an EquivariantSequential needs at least one layer")
        for pos, layer in enumerate(layers):
            if not isinstance(layer, EquivariantModule):
                raise TypeError(
                    f"layer {pos} ({type(layer).__name__}) is not an EquivariantModule: "
                    "wrap plain modules in symlight.models.Pointwise"
                )
        for pos, (a, b) in enumerate(zip(layers, layers[1:])):
            if a.out_order != b.in_order:
                raise ValueError(
                    f"order mismatch between layer {pos} ({type(a).__name__}, returns order "
                    f"{int(a.out_order)}) and layer {pos + 1} ({type(b).__name__}, takes order "
                    f"{int(b.in_order)})"
                )
        super().__init__(layers[0].in_order, layers[-1].out_order)
        self.layers = nn.ModuleList(layers)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        if mask is None and self.in_order > 0:
            mask = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
        for layer in self.layers:
            x = layer(x, mask)
        return x

    def extra_repr(self) -> str:
        return self.type_repr()
