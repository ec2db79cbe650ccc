"""DeepSets (Zaheer et al. 2017): equivariant set->set layers, one node per element."""

from __future__ import annotations

from symlight.core.rep import Rep

from .network import EquivariantSequential, LayerSpec, build_layers
from .pooling import Pooling

__all__ = ["DeepSets"]


class DeepSets(EquivariantSequential):
    """Stack of set->set layers ``x_i -> λx_i + γ·pool_j(x_j) + b``, equivariant to S_n.

    ``out_order=1`` returns per-element outputs ``(B, n, out_channels)``; ``out_order=0`` pools
    once more and returns invariant ones ``(B, out_channels)``. No layer compares elements two by
    two: the only interaction between elements is through the pooled summary.

    >>> DeepSets(1, 1, out_order=1, hidden=8, depth=2)
    DeepSets(
      1x1 -> 1x1 | 41 weights
      (layers): ModuleList(
        (0): EquivariantLinear(1x1 -> 8x1 | 24 weights, pooling=max)
        (1): Activation(8x1 -> 8x1 | 0 weights, relu)
        (2): EquivariantLinear(8x1 -> 1x1 | 17 weights, pooling=max)
      )
    )
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
        act: LayerSpec = {"layer": "activation", "name": activation}
        specs: list[LayerSpec] = []
        for _ in range(depth - 1):
            specs += [{"layer": "linear", "channels": hidden, "pooling": pooling}, act]
        if out_order == 1:
            specs.append({"layer": "linear", "channels": out_channels, "pooling": pooling})
        else:
            specs += [
                {"layer": "linear", "order": 0, "channels": hidden, "pooling": pooling},
                act,
                {"layer": "linear", "channels": out_channels},
            ]
        super().__init__(build_layers(Rep(in_channels, 1), specs))
