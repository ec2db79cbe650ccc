"""DeepSets (Zaheer et al. 2017): equivariant set->set layers, one node per element."""

from __future__ import annotations

from .base import EquivariantModule
from .linear import EquivariantLinear
from .network import EquivariantSequential
from .pointwise import Activation
from .pooling import Pooling

__all__ = ["DeepSets"]


class DeepSets(EquivariantSequential):
    """Stack of set->set layers ``x_i -> λx_i + γ·pool_j(x_j) + b``, equivariant to S_n.

    ``out_order=1`` returns per-element outputs ``(B, n, out_channels)``; ``out_order=0`` pools
    once more and returns invariant ones ``(B, out_channels)``. No layer compares elements two by
    two: the only interaction between elements is through the pooled summary.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        out_order: int = 1,
        hidden: int = 64,
        depth: int = 3,
        pooling: Pooling = "max",
        activation: str = "relu",
    ) -> None:
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        if out_order not in (0, 1):
            raise ValueError(f"DeepSets returns order 0 or 1, got out_order={out_order}")
        layers: list[EquivariantModule] = []
        width = in_channels
        for _ in range(depth - 1):
            layers += [EquivariantLinear(1, 1, width, hidden, pooling), Activation(activation, 1)]
            width = hidden
        if out_order == 1:
            layers.append(EquivariantLinear(1, 1, width, out_channels, pooling))
        else:
            layers += [
                EquivariantLinear(1, 0, width, hidden, pooling),
                Activation(activation, 0),
                EquivariantLinear(0, 0, hidden, out_channels),
            ]
        super().__init__(layers)
