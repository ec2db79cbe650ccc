"""Typed composition of equivariant layers, checked when it is built, and networks from a spec.

A spec is a list of dicts, one per layer, readable from YAML::

    layers:
      - {layer: linear, channels: 32}            # 1 -> 1 (order defaults to the current one)
      - {layer: activation, name: relu}
      - {layer: lift, channels: 32}              # 1 -> 2: MLP(x_i, x_j, x_i - x_j)
      - {layer: linear, order: 2, channels: 32}  # 2 -> 2, the 15-map basis
      - {layer: activation}
      - {layer: reduce, reduce: max}             # 2 -> 1

The representation flows from one layer to the next: each layer is built by its class's
``from_spec(rep_in, **options)`` for the rep the previous layer returns (``rep = layer.rep_out``),
so ``channels`` (output channels) defaults to the input's and ``order`` (output order, ``linear``
and ``group_linear``) to the input's. A spec may state the channels it expects
(``in_channels: 8``); when they are not the ones that arrive, building fails and names both
layers and their reps::

    ValueError: layer 2 (PairwiseReduce) returns 16x1 but layer 3 (EquivariantLinear) takes 8x1

For a symmetry other than S_n, give the network a ``group`` (``"dihedral(16)"``, see
:mod:`symlight.core.groups`): it is in the network's input rep, so every layer's reps name it
(``16x1 @ D_16``), ``group_linear`` layers use it, and so does the head::

    group: dihedral(16)
    layers:
      - {layer: group_linear, order: 2, channels: 16}   # 1 -> 2, one weight per orbit of D_16
      - {layer: activation}
      - {layer: group_linear, order: 1, channels: 16}   # 2 -> 1

Over several independent sets (``in_order: [1, 1]``, a matrix whose rows and columns permute
separately), orders are lists with one order per set, ``linear`` builds a
:class:`~symlight.models.ProductLinear` and the head is one too::

    in_order: [1, 1]
    layers:
      - {layer: linear, channels: 32}            # (1,1) -> (1,1): Hartford's 4 maps
      - {layer: activation}
      - {layer: pool, set: 1, reduce: max}       # (1,1) -> (1,0): max over each row
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from symlight.core.groups import PermutationGroup
from symlight.core.rep import Rep, RepLike, SetMask, set_masks

from .attention import ISAB, PMA, SAB
from .axes import AxisBroadcast, AxisPool
from .base import EquivariantModule
from .cross_attention import CrossAttention
from .group_linear import GroupLinear
from .linear import EquivariantLinear
from .pairwise import PairwiseComparison, PairwiseLift, PairwiseReduce, PairwiseSimilarity
from .pointwise import MLP, Activation, ChannelDropout, LayerNorm
from .pooling import Pooling
from .product_linear import ProductLinear
from .sinkhorn import Sinkhorn

__all__ = [
    "LAYERS",
    "EquivariantNetwork",
    "EquivariantSequential",
    "Residual",
    "LayerSpec",
    "build_layer",
    "build_layers",
    "spec_options",
]


def mismatch(source: str, returns: Rep, layer: str, takes: Rep) -> str:
    """``"<source> 16x1 but <layer> takes 8x1: the channels differ"``, where ``source`` says
    what gives the rep (``"layer 2 (PairwiseReduce) returns"``, ``"the network input is"``).
    """
    differ = []
    if returns.orders != takes.orders:
        differ.append("orders")
    if None not in (returns.channels, takes.channels) and returns.channels != takes.channels:
        differ.append("channels")
    if returns.groups != takes.groups and len(returns.groups) == len(takes.groups):
        differ.append("groups")
    reason = f": the {', '.join(differ)} differ" if differ else ""
    return f"{source} {returns} but {layer} takes {takes}{reason}"


def _name(pos: int, layer: nn.Module) -> str:
    return f"layer {pos} ({type(layer).__name__})"


class EquivariantSequential(EquivariantModule):
    """Layers applied in turn; equivariant to the group of its reps because each layer is.

    Each layer's ``rep_out`` must equal the next one's ``rep_in`` (order, channels and group); a
    mismatch raises a ValueError naming both positions, both layers and their reps, e.g.
    ``layer 2 (PairwiseReduce) returns 16x1 but layer 3 (EquivariantLinear) takes 8x1``. A layer
    that leaves its channels undeclared (``?x1``) takes any. ``rep_in`` is the first layer's,
    ``rep_out`` the last one's. The ``(B, n)`` mask is passed to every layer (an all-True one is
    made when none is given, so that layers that broadcast an invariant back to the set know n).
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
            if not a.rep_out.matches(b.rep_in):
                source = f"{_name(pos, a)} returns"
                raise ValueError(mismatch(source, a.rep_out, _name(pos + 1, b), b.rep_in))
        super().__init__(layers[0].rep_in, layers[-1].rep_out)
        self.layers = nn.ModuleList(layers)

    def forward(self, x: Tensor, mask: SetMask = None) -> Tensor:
        if self.rep_in.num_sets > 1:
            mask = _full_masks(x, mask, self.rep_in)
        elif mask is None and self.rep_in.set_axes > 0:
            mask = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
        for layer in self.layers:
            x = layer(x, mask)
        return x


def _full_masks(x: Tensor, mask: SetMask, rep: Rep) -> tuple[Tensor | None, ...]:
    """One mask per set, all-True for a set without one whose size the input shows."""
    masks = list(set_masks(mask, rep.num_sets))
    for s, dims in enumerate(rep.dims(s) for s in range(rep.num_sets)):
        if masks[s] is None and dims:
            masks[s] = torch.ones(x.shape[0], x.shape[dims[0]], dtype=torch.bool, device=x.device)
    return tuple(masks)


LayerSpec = dict[str, Any]
"""One layer of an :class:`EquivariantNetwork`: ``{"layer": name, **options}``."""


class Residual(EquivariantModule):
    """``x + block(x)``: equivariant to the group of its reps because the block is.

    The block is a list of layers composed as an :class:`EquivariantSequential` that must return
    the rep it takes (a ValueError names both otherwise). From a spec, ``layers`` lists the
    block's layers, built for the rep that flows into the residual; the default is ``linear``
    then ``activation``.
    """

    def __init__(self, block: Iterable[EquivariantModule]) -> None:
        block = EquivariantSequential(block)
        if not block.rep_out.matches(block.rep_in):
            raise ValueError(
                f"a residual block must return the rep it takes: it takes {block.rep_in} and "
                f"returns {block.rep_out}"
            )
        super().__init__(block.rep_in, block.rep_out)
        self.block = block

    @classmethod
    def from_spec(cls, rep_in: Rep, layers: list[LayerSpec] | None = None) -> Residual:
        """The block of ``layers`` (default: linear, activation) for input ``rep_in``."""
        specs = [{"layer": "linear"}, {"layer": "activation"}] if layers is None else layers
        return cls(build_layers(rep_in, [dict(s) for s in specs]))

    def forward(self, x: Tensor, mask: SetMask = None) -> Tensor:
        return self.rep_out.zero_padding(x + self.block(x, mask), mask)


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
    "pool": AxisPool,
    "broadcast": AxisBroadcast,
    "cross_attention": CrossAttention,
    "residual": Residual,
    "sinkhorn": Sinkhorn,
}
"""Layer names usable in a spec. Each class builds itself for the rep of its input with
``cls.from_spec(rep_in, **options)``: the input's order, channels and group flow from the previous
layer, ``channels`` sets the output channels (default: the input's) and ``order`` the output order
(``linear`` and ``group_linear``, default: the input's). Defaults are the layer class's own. A
spec may also give ``in_channels``, the channels it expects to receive (checked)."""

ACROSS_SETS: dict[str, type[EquivariantModule]] = {"linear": ProductLinear}
"""Layers whose version for a rep over several sets is another class: ``linear`` builds a
:class:`ProductLinear` (``order`` then gives one order per set)."""

CHECKED = ("in_channels",)
"""Spec keys that state what a layer expects of its input instead of configuring it."""


def spec_options(cls: type) -> list[str]:
    """The options a spec of layer class ``cls`` may set: the parameters of its ``from_spec``
    after the input rep, then the checked ``in_channels``.
    """
    parameters = list(inspect.signature(cls.from_spec).parameters)[1:]
    return [*parameters, *CHECKED]


def build_layer(
    spec: LayerSpec,
    order: int | None = None,
    channels: int | None = None,
    group: PermutationGroup | str | None = None,
    *,
    rep_in: RepLike | None = None,
) -> EquivariantModule:
    """Build one layer from its spec for the representation of its input: ``rep_in``, or
    ``Rep(channels, order, group)``. A spec's ``in_channels`` replaces the input's channels in
    the rep the layer is built for, so a network that feeds it others fails to build.
    """
    if rep_in is None:
        if order is None or channels is None:
            raise ValueError("build_layer needs the input's rep_in, or its order and channels")
        rep = Rep(channels, order, group)
    else:
        rep = Rep.parse(rep_in)
    options = dict(spec)
    name = options.pop("layer", None)
    if name not in LAYERS:
        raise ValueError(f"unknown layer {name!r}; available: {', '.join(LAYERS)}")
    cls = ACROSS_SETS.get(name, LAYERS[name]) if rep.num_sets > 1 else LAYERS[name]
    if "group" in options:
        raise ValueError(
            f"layer {name!r} takes its group from its input's rep ({rep}): give the network a "
            "group (group: dihedral(16)), not the layer"
        )
    allowed = spec_options(cls)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(
            f"layer {name!r} has no option {', '.join(map(repr, unknown))}; "
            f"options: {', '.join(allowed)}"
        )
    expected = options.pop("in_channels", None)
    if expected is not None:
        rep = rep.with_channels(expected)
    return cls.from_spec(rep, **options)


def build_layers(rep_in: RepLike, specs: Sequence[LayerSpec]) -> list[EquivariantModule]:
    """The layers of ``specs``, each built for the rep the previous one returns (the first for
    ``rep_in``, the network input). A layer that takes another rep than it gets is a ValueError
    naming both layers (or the network input) and their reps.
    """
    rep = Rep.parse(rep_in)
    modules: list[EquivariantModule] = []
    for pos, spec in enumerate(specs):
        try:
            module = build_layer(spec, rep_in=rep)
        except (TypeError, ValueError) as error:
            raise ValueError(f"layer {pos} ({spec}): {error}") from error
        if not rep.matches(module.rep_in):
            source = f"{_name(pos - 1, modules[-1])} returns" if modules else "the network input is"
            raise ValueError(mismatch(source, rep, _name(pos, module), module.rep_in))
        modules.append(module)
        rep = module.rep_out
    return modules


DEFAULT_LAYERS: list[LayerSpec] = [
    {"layer": "linear", "channels": 32},
    {"layer": "activation"},
    {"layer": "compare", "channels": 32, "hidden": 32},
    {"layer": "activation"},
]


class EquivariantNetwork(EquivariantSequential):
    """A network built from a list of layer specs, equivariant to S_n because each layer is, or,
    with a ``group``, to that group of the positions (every layer is equivariant to it).

    The network's input rep is ``Rep(in_channels, in_order, group)``. ``layers`` is read in
    order: each spec is built for the rep its input has (``rep = layer.rep_out``), and a layer
    that takes another rep (order, channels or group) is a ValueError when the network is
    built, naming both positions, layers and reps. A final head maps to ``out_order`` with
    ``out_channels``: an ``EquivariantLinear`` (``head_pooling`` for its pooling), or with a
    group a :class:`GroupLinear`. With ``head=False`` the last layer must already return
    ``Rep(out_channels, out_order, group)``. ``group`` (a
    :class:`~symlight.core.groups.PermutationGroup` or an expression such as ``"dihedral(16)"``)
    is in every layer's reps (``network.group``, ``network.rep_out.group``); sets then have
    exactly the group's ``N`` elements. Over several sets, ``in_order`` and ``out_order`` give
    one order per set (``(1, 1)``: a matrix whose rows and columns permute separately), the
    network is equivariant to the product of one symmetric group per set and its head is a
    :class:`ProductLinear`; the mask is then a tuple of one ``(B, n_s)`` mask per set.
    x: ``(B, n, in_channels)`` (``in_order`` 1) -> ``(B, [n, [n,]] out_channels)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        out_order: int | tuple[int, ...] = 1,
        layers: list[dict[str, Any]] | None = None,
        in_order: int | tuple[int, ...] = 1,
        head: bool = True,
        head_pooling: Pooling = "mean",
        group: PermutationGroup | str | None = None,
    ) -> None:
        rep_in = Rep(in_channels, in_order, group)
        specs = [dict(s) for s in (DEFAULT_LAYERS if layers is None else layers)]
        modules = build_layers(rep_in, specs)
        rep = modules[-1].rep_out if modules else rep_in
        if head and rep.num_sets > 1:
            modules.append(ProductLinear.from_spec(rep, out_order, out_channels, head_pooling))
        elif head and rep.group is not None:
            modules.append(GroupLinear.from_spec(rep, order=out_order, channels=out_channels))
        elif head:
            modules.append(EquivariantLinear.from_spec(rep, out_order, out_channels, head_pooling))
        super().__init__(modules)
        wanted = Rep(out_channels, out_order, group)
        if self.rep_out != wanted:
            raise ValueError(
                f"the last layer ({type(modules[-1]).__name__}) returns {self.rep_out}; the "
                f"network must return {wanted}"
            )
        self.specs = specs
