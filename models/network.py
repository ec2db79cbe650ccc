"""Typed composition of equivariant layers, checked when it is built, and networks from a spec.

A spec is a list of dicts, one per layer, readable from YAML::

    layers:
      - {layer: linear, channels: 32}            # 1 -> 1 (order defaults to the current one)
      - {layer: activation, name: relu}
      - {layer: lift, channels: 32}              # 1 -> 2: MLP(x_i, x_j, x_i - x_j)
      - {layer: linear, order: 2, channels: 32}  # 2 -> 2, the 15-map basis
      - {layer: activation}
      - {layer: reduce, reduce: max}             # 2 -> 1

Channels and orders flow from one layer to the next; ``channels`` (output channels) defaults to
the input's, ``order`` (output order, ``linear`` and ``group_linear``) to the input's.

For a symmetry other than S_n, give the network a ``group`` (``"dihedral(16)"``, see
:mod:`symlight.groups`): ``group_linear`` layers use it, and so does the head::

    group: dihedral(16)
    layers:
      - {layer: group_linear, order: 2, channels: 16}   # 1 -> 2, one weight per orbit of D_16
      - {layer: activation}
      - {layer: group_linear, order: 1, channels: 16}   # 2 -> 1
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor, nn

from symlight.groups import PermutationGroup, parse_group

from .attention import ISAB, PMA, SAB
from .base import EquivariantModule
from .group_linear import GroupLinear
from .linear import EquivariantLinear
from .pairwise import PairwiseComparison, PairwiseLift, PairwiseReduce
from .pointwise import MLP, Activation, ChannelDropout, LayerNorm
from .pooling import Pooling, Reduction

__all__ = ["LAYERS", "EquivariantNetwork", "EquivariantSequential", "LayerSpec", "build_layer"]


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


LayerSpec = dict[str, Any]
"""One layer of an :class:`EquivariantNetwork`: ``{"layer": name, **options}``."""


def _linear(
    in_order: int,
    in_channels: int,
    *,
    order: int | None = None,
    channels: int | None = None,
    pooling: Pooling = "mean",
    bias: bool = True,
) -> EquivariantModule:
    out_order = in_order if order is None else order
    return EquivariantLinear(
        in_order, out_order, in_channels, channels or in_channels, pooling, bias
    )


def _group_linear(
    in_order: int,
    in_channels: int,
    *,
    group: PermutationGroup | str | None = None,
    order: int | None = None,
    channels: int | None = None,
    bias: bool = True,
    normalize: bool = True,
) -> EquivariantModule:
    if group is None:
        raise ValueError(
            "group_linear needs a group: give the network one (group: dihedral(16)) or the layer"
        )
    out_order = in_order if order is None else order
    return GroupLinear(
        group, in_order, out_order, in_channels, channels or in_channels, bias, normalize
    )


def _activation(in_order: int, in_channels: int, *, name: str = "relu") -> EquivariantModule:
    return Activation(name, in_order)


def _mlp(
    in_order: int,
    in_channels: int,
    *,
    channels: int | None = None,
    hidden: int = 64,
    depth: int = 2,
    activation: str = "relu",
) -> EquivariantModule:
    return MLP(in_channels, channels or in_channels, hidden, depth, activation, in_order)


def _layer_norm(in_order: int, in_channels: int) -> EquivariantModule:
    return LayerNorm(in_channels, in_order)


def _dropout(in_order: int, in_channels: int, *, p: float = 0.1) -> EquivariantModule:
    return ChannelDropout(p, in_order)


def _lift(
    in_order: int,
    in_channels: int,
    *,
    channels: int | None = None,
    hidden: int = 64,
    depth: int = 2,
    activation: str = "relu",
) -> EquivariantModule:
    return PairwiseLift(in_channels, channels or in_channels, hidden, depth, activation)


def _reduce(in_order: int, in_channels: int, *, reduce: Reduction = "max") -> EquivariantModule:
    return PairwiseReduce(reduce)


def _compare(
    in_order: int,
    in_channels: int,
    *,
    channels: int | None = None,
    hidden: int = 64,
    depth: int = 2,
    activation: str = "relu",
    reduce: Reduction = "max",
    chunk_size: int | None = None,
) -> EquivariantModule:
    out = channels or in_channels
    return PairwiseComparison(in_channels, out, hidden, depth, activation, reduce, chunk_size)


def _sab(
    in_order: int,
    in_channels: int,
    *,
    channels: int | None = None,
    heads: int = 4,
    layer_norm: bool = True,
) -> EquivariantModule:
    return SAB(in_channels, channels or in_channels, heads, layer_norm)


def _isab(
    in_order: int,
    in_channels: int,
    *,
    channels: int | None = None,
    heads: int = 4,
    inducing: int = 16,
    layer_norm: bool = True,
) -> EquivariantModule:
    return ISAB(in_channels, channels or in_channels, heads, inducing, layer_norm)


def _pma(
    in_order: int,
    in_channels: int,
    *,
    channels: int | None = None,
    heads: int = 4,
    seeds: int = 1,
    layer_norm: bool = True,
) -> EquivariantModule:
    return PMA(in_channels, channels or in_channels, heads, seeds, layer_norm)


LAYERS: dict[str, Callable[..., EquivariantModule]] = {
    "linear": _linear,
    "group_linear": _group_linear,
    "activation": _activation,
    "mlp": _mlp,
    "layer_norm": _layer_norm,
    "dropout": _dropout,
    "lift": _lift,
    "reduce": _reduce,
    "compare": _compare,
    "sab": _sab,
    "isab": _isab,
    "pma": _pma,
}
"""Layer names usable in a spec. Each builder takes the order and channels of its input, then the
spec's options: ``channels`` (output channels, default: the input's), ``order`` (``linear`` and
``group_linear``: output order, default: the input's) and the options of the layer class. A
network's ``group`` is passed to every builder that takes a ``group`` option the spec leaves out."""


def build_layer(
    spec: LayerSpec, order: int, channels: int, group: PermutationGroup | None = None
) -> EquivariantModule:
    """Build one layer from its spec, given the order and channels of its input (and the
    network's group, for the layers that take one).
    """
    options = dict(spec)
    name = options.pop("layer", None)
    if name not in LAYERS:
        raise ValueError(f"unknown layer {name!r}; available: {', '.join(LAYERS)}")
    builder = LAYERS[name]
    allowed = list(inspect.signature(builder).parameters)[2:]
    if group is not None and "group" in allowed:
        options.setdefault("group", group)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(
            f"layer {name!r} has no option {', '.join(map(repr, unknown))}; "
            f"options: {', '.join(allowed) or 'none'}"
        )
    return builder(order, channels, **options)


DEFAULT_LAYERS: list[LayerSpec] = [
    {"layer": "linear", "channels": 32},
    {"layer": "activation"},
    {"layer": "compare", "channels": 32, "hidden": 32},
    {"layer": "activation"},
]


class EquivariantNetwork(EquivariantSequential):
    """A network built from a list of layer specs, equivariant to S_n because each layer is, or,
    with a ``group``, to that group of the positions (every layer is equivariant to it).

    ``layers`` is read in order: each spec is built for the order and channels its input has, and
    the orders are checked when the network is built (a mismatch is a ValueError naming the two
    positions, layers and orders). A final ``EquivariantLinear`` head maps to ``out_order`` with
    ``out_channels`` (``head_pooling`` for its pooling); with ``head=False`` the last layer must
    already return ``out_order`` and ``out_channels``. With ``group`` (a
    :class:`~symlight.groups.PermutationGroup` or an expression such as ``"dihedral(16)"``), the
    ``group_linear`` layers use it and the head is a :class:`GroupLinear`; sets then have exactly
    the group's ``N`` elements.
    x: ``(B, n, in_channels)`` (``in_order`` 1) -> ``(B, [n, [n,]] out_channels)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        out_order: int = 1,
        layers: list[dict[str, Any]] | None = None,
        in_order: int = 1,
        head: bool = True,
        head_pooling: Pooling = "mean",
        group: PermutationGroup | str | None = None,
    ) -> None:
        resolved = None if group is None else parse_group(group)
        specs = [dict(s) for s in (DEFAULT_LAYERS if layers is None else layers)]
        modules: list[EquivariantModule] = []
        order, channels = in_order, in_channels
        for pos, spec in enumerate(specs):
            try:
                module = build_layer(spec, order, channels, resolved)
            except (TypeError, ValueError) as error:
                raise ValueError(f"layer {pos} ({spec}): {error}") from error
            if pos == 0 and module.in_order != in_order:
                raise ValueError(
                    f"layer 0 ({type(module).__name__}) takes order {int(module.in_order)} but "
                    f"the network input has order {in_order}"
                )
            modules.append(module)
            order = int(module.out_order)
            channels = getattr(module, "out_channels", channels)
        if head and resolved is not None:
            modules.append(GroupLinear(resolved, order, out_order, channels, out_channels))
        elif head:
            modules.append(
                EquivariantLinear(order, out_order, channels, out_channels, head_pooling)
            )
        super().__init__(modules)
        if int(self.out_order) != out_order or (channels != out_channels and not head):
            raise ValueError(
                f"the last layer ({type(modules[-1]).__name__}) returns {channels} channels of "
                f"order {int(self.out_order)}; the network must return {out_channels} channels "
                f"of order {out_order}"
            )
        self.specs = specs
        self.group = resolved
