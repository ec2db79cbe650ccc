"""Preset networks for the CLI: ``net(in_channels, out_channels, out_order, ...)``.

Each preset is an :class:`EquivariantSequential` assembled from the layer library, so it is
equivariant to S_n for every set size and its repr lists the order of every layer.
``DeepSets`` lives in :mod:`.deepsets`; the non-equivariant ``MLPBaseline`` in :mod:`.baseline`.
"""

from __future__ import annotations

from typing import Literal

from .attention import ISAB, PMA, SAB
from .base import EquivariantModule
from .linear import EquivariantLinear
from .network import EquivariantSequential
from .pairwise import PairwiseComparison, PairwiseLift, PairwiseReduce
from .pointwise import MLP, Activation
from .pooling import Pooling, Reduction

__all__ = ["PairwiseNet", "SetTransformer"]

ActivationName = Literal["relu", "gelu", "silu", "tanh", "sigmoid"]


class PairwiseNet(EquivariantSequential):
    """Compare elements two by two, equivariant to S_n: ``f(P·x) = P·f(x)``.

    Lift every pair ``(x_i, x_j)`` with a shared MLP of ``(x_i, x_j, x_i - x_j)``, apply
    ``pair_layers`` order-2 linear layers (the 15-map basis) with ``activation``, reduce the pairs
    to elements over ``j`` with ``reduce``, apply ``set_layers`` order-1 layers and a linear head
    to ``out_order`` (0, 1 or 2; for 2 the pairs are not reduced).

    With ``pair_layers=0`` the lift and the reduction are fused into a ``PairwiseComparison``
    whose rows can be processed ``chunk_size`` at a time: memory ``O(chunk_size · n)`` per
    channel instead of ``O(n^2)``. Order-2 layers pool over all pairs, so they cannot be chunked.
    x: ``(B, n, in_channels) -> (B, [n, [n,]] out_channels)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        out_order: int = 1,
        hidden: int = 32,
        pair_layers: int = 1,
        set_layers: int = 1,
        pooling: Pooling = "mean",
        reduce: Reduction = "max",
        activation: ActivationName = "relu",
        chunk_size: int | None = None,
    ) -> None:
        if out_order not in (0, 1, 2):
            raise ValueError(f"PairwiseNet returns order 0, 1 or 2, got out_order={out_order}")
        if chunk_size is not None and (pair_layers > 0 or out_order == 2):
            raise ValueError(
                "chunk_size needs pair_layers=0 and out_order < 2: order-2 layers pool over all "
                "pairs and cannot be chunked"
            )
        layers: list[EquivariantModule] = []
        if pair_layers == 0 and out_order < 2:
            layers += [
                PairwiseComparison(
                    in_channels, hidden, hidden, 2, activation, reduce, chunk_size=chunk_size
                ),
                Activation(activation, 1),
            ]
        else:
            layers += [PairwiseLift(in_channels, hidden, hidden, 2, activation)]
            layers += [Activation(activation, 2)]
            for _ in range(pair_layers):
                layers += [EquivariantLinear(2, 2, hidden, hidden, pooling)]
                layers += [Activation(activation, 2)]
            if out_order < 2:
                layers.append(PairwiseReduce(reduce))
        if out_order < 2:
            for _ in range(set_layers):
                layers += [EquivariantLinear(1, 1, hidden, hidden, pooling)]
                layers += [Activation(activation, 1)]
            head_in = 1
        else:
            head_in = 2
        layers.append(EquivariantLinear(head_in, out_order, hidden, out_channels, pooling))
        super().__init__(layers)


class SetTransformer(EquivariantSequential):
    """Set Transformer (Lee et al. 2019), equivariant to S_n: ``f(P·x) = P·f(x)``.

    A per-element linear embedding, ``depth`` self-attention blocks (``SAB``, ``O(n^2)``; or
    ``ISAB`` with ``inducing`` learned points when ``inducing > 0``, ``O(n · inducing)``), then a
    per-element linear head for ``out_order=1`` or pooling by attention (``PMA``) and a linear
    head for ``out_order=0`` (invariant to S_n).
    x: ``(B, n, in_channels) -> (B, [n,] out_channels)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        out_order: int = 1,
        hidden: int = 64,
        heads: int = 4,
        depth: int = 2,
        inducing: int = 0,
        layer_norm: bool = True,
    ) -> None:
        if out_order not in (0, 1):
            raise ValueError(f"SetTransformer returns order 0 or 1, got out_order={out_order}")
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        layers: list[EquivariantModule] = [MLP(in_channels, hidden, depth=1, order=1)]
        for _ in range(depth):
            if inducing > 0:
                layers.append(ISAB(hidden, hidden, heads, inducing, layer_norm))
            else:
                layers.append(SAB(hidden, hidden, heads, layer_norm))
        if out_order == 1:
            layers.append(MLP(hidden, out_channels, depth=1, order=1))
        else:
            layers += [PMA(hidden, hidden, heads, 1, layer_norm)]
            layers += [MLP(hidden, out_channels, depth=1, order=0)]
        super().__init__(layers)
