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
:mod:`symlight.core.groups`): ``group_linear`` layers use it, and so does the head::

    group: dihedral(16)
    layers:
      - {layer: group_linear, order: 2, channels: 16}   # 1 -> 2, one weight per orbit of D_16
      - {layer: activation}
      - {layer: group_linear, order: 1, channels: 16}   # 2 -> 1
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn

from symlight.core.groups import PermutationGroup, parse_group

from .attention import ISAB, PMA, SAB
from .base import EquivariantModule
from .group_linear import GroupLinear
from .linear import EquivariantLinear
from .pairwise import PairwiseComparison, PairwiseLift, PairwiseReduce, PairwiseSimilarity
from .pointwise import MLP, Activation, ChannelDropout, LayerNorm
from .pooling import Pooling

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


LAYERS: dict[str, type[EquivariantModule]] = {
    "linear": EquivariantLinear,
    "group_linear": GroupLinear,
    "activation": Activation,
    "mlp": MLP,
    "layer_norm": LayerNorm,
    "dropout": ChannelDropout,
    "lift": PairwiseLift,
    "reduce": PairwiseReduce,
    "compare": PairwiseComparison,
    "similarity": PairwiseSimilarity,
    "sab": SAB,
    "isab": ISAB,
    "pma": PMA,
}
"""Layer names usable in a spec. A spec's options are those of the layer class, except the
order and channels of the input, which flow from the previous layer: ``channels`` sets the
output channels (default: the input's) and ``order`` the output order (``linear`` and
``group_linear``, default: the input's). Defaults are the layer class's own. A network's ``group``
is passed to every layer that takes a ``group`` the spec leaves out."""

_INPUT = ("in_order", "order", "in_channels", "channels")
"""Parameters of a layer class filled from its input: its order and channels."""


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
    cls = LAYERS[name]
    params = [p for p in inspect.signature(cls).parameters if p != "self"]
    if "group" in params:
        if group is not None:
            options.setdefault("group", group)
        if options.get("group") is None:
            raise ValueError(
                f"{name} needs a group: give the network one (group: dihedral(16)) or the layer"
            )
    given = {"in_order": order, "order": order, "in_channels": channels, "channels": channels}
    arguments = {p: given[p] for p in params if p in _INPUT}
    allowed = [p for p in params if p not in _INPUT and p not in ("out_order", "out_channels")]
    if "out_order" in params:
        arguments["out_order"] = options.pop("order", None)
        arguments["out_order"] = order if arguments["out_order"] is None else arguments["out_order"]
        allowed.insert(0, "order")
    if "out_channels" in params:
        arguments["out_channels"] = options.pop("channels", None) or channels
        allowed.insert("order" in allowed, "channels")
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(
            f"layer {name!r} has no option {', '.join(map(repr, unknown))}; "
            f"options: {', '.join(allowed) or 'none'}"
        )
    return cls(**arguments, **options)


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
    :class:`~symlight.core.groups.PermutationGroup` or an expression such as ``"dihedral(16)"``), the
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
