"""Preset networks for the CLI: ``net(in_channels, out_channels, out_order, ...)``.

Each preset is an :class:`EquivariantSequential` assembled from layer specs (as a YAML network is,
the rep flowing from layer to layer), so it is equivariant to S_n for every set size and its repr
lists the reps of every layer.
``DeepSets`` lives in :mod:`.deepsets`; the non-equivariant ``MLPBaseline`` in :mod:`.baseline`.
"""

from __future__ import annotations

from typing import Literal

from symlight.core.rep import Rep

from .network import EquivariantSequential, LayerSpec, build_layers
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
        act: LayerSpec = {"layer": "activation", "name": activation}
        mlp = {"channels": hidden, "hidden": hidden, "depth": 2, "activation": activation}
        linear: LayerSpec = {"layer": "linear", "channels": hidden, "pooling": pooling}
        specs: list[LayerSpec] = []
        if pair_layers == 0 and out_order < 2:
            compare = {"layer": "compare", **mlp, "reduce": reduce, "chunk_size": chunk_size}
            specs += [compare, act]
        else:
            specs += [{"layer": "lift", **mlp}, act]
            specs += [linear, act] * pair_layers
            if out_order < 2:
                specs.append({"layer": "reduce", "reduce": reduce})
        if out_order < 2:
            specs += [linear, act] * set_layers
        head = {"layer": "linear", "order": out_order, "channels": out_channels, "pooling": pooling}
        specs.append(head)
        super().__init__(build_layers(Rep(in_channels, 1), specs))


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
        block: LayerSpec = {"channels": hidden, "heads": heads, "layer_norm": layer_norm}
        specs: list[LayerSpec] = [{"layer": "mlp", "channels": hidden, "depth": 1}]
        for _ in range(depth):
            if inducing > 0:
                specs.append({"layer": "isab", **block, "inducing": inducing})
            else:
                specs.append({"layer": "sab", **block})
        if out_order == 0:
            specs.append({"layer": "pma", **block, "seeds": 1})
        specs.append({"layer": "mlp", "channels": out_channels, "depth": 1})
        super().__init__(build_layers(Rep(in_channels, 1), specs))
