"""The contracts of symlight modules: a module on sets, and an equivariant one.

Every module declares the representation it takes and the one it returns (``rep_in``,
``rep_out``, :class:`~symlight.core.rep.Rep`: channels x order, and the group), and prints them,
e3nn style:

>>> from symlight.models import EquivariantLinear
>>> EquivariantLinear(1, 2, 16, 8)
EquivariantLinear(16x1 -> 8x2 | 656 weights, pooling=mean)
"""

from __future__ import annotations

from torch import Tensor, nn

from symlight.core.groups import PermutationGroup
from symlight.core.rep import Rep, RepLike, entry_mask

__all__ = ["EquivariantModule", "SetModule", "as_layer_rep", "mask_output"]


def as_layer_rep(rep: RepLike | int) -> Rep:
    """A layer's representation from a :class:`Rep`, its printed form, or a bare order (whose
    channels are then undeclared: any number).
    """
    if isinstance(rep, int) and not isinstance(rep, bool):
        return Rep(None, rep)
    if isinstance(rep, (Rep, str)):
        return Rep.parse(rep)
    raise ValueError(f"a representation must be a Rep, its printed form or an order; got {rep!r}")


class SetModule(nn.Module):
    """A module on sets: maps a tensor of representation ``rep_in`` to one of ``rep_out``.

    ``forward(x, mask=None)`` takes the ``(B, n)`` padding mask of the set (True for real
    elements); padded outputs are zeros. It promises nothing about symmetry: a
    :class:`SetModule` may depend on the order of the elements (the MLP baseline does). The
    symmetric ones are :class:`EquivariantModule`.

    ``in_order``, ``out_order``, ``in_channels`` and ``out_channels`` read the reps. The repr of
    every module is ``Name(rep_in -> rep_out | N weights, options)``, on one line for a layer
    and followed by its layers for a composition (a module that holds other set modules); a
    subclass adds its options by overriding :meth:`options_repr`.

    Args:
        rep_in: representation of the input (a :class:`~symlight.core.rep.Rep`, its printed
            form such as ``"16x1"``, or a bare order, whose channels are then undeclared).
        rep_out: representation of the output, likewise.

    """

    def __init__(self, rep_in: RepLike | int, rep_out: RepLike | int) -> None:
        super().__init__()
        self._rep_in = as_layer_rep(rep_in)
        self._rep_out = as_layer_rep(rep_out)

    @property
    def rep_in(self) -> Rep:
        """Representation of the input."""
        return self._rep_in

    @property
    def rep_out(self) -> Rep:
        """Representation of the output."""
        return self._rep_out

    @property
    def in_order(self) -> int:
        """Order of the input over its set (``rep_in.order``)."""
        return self.rep_in.order

    @property
    def out_order(self) -> int:
        """Order of the output over its set (``rep_out.order``)."""
        return self.rep_out.order

    @property
    def in_channels(self) -> int | None:
        """Channels of the input (``rep_in.channels``; None when undeclared)."""
        return self.rep_in.channels

    @property
    def out_channels(self) -> int | None:
        """Channels of the output (``rep_out.channels``; None when undeclared)."""
        return self.rep_out.channels

    def num_weights(self) -> int:
        """Number of trainable scalars."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def options_repr(self) -> str:
        """The module's options for its repr (``pooling=mean``); empty by default."""
        return ""

    def type_repr(self) -> str:
        """``rep_in -> rep_out | N weights``."""
        return f"{self.rep_in} -> {self.rep_out} | {self.num_weights()} weights"

    def extra_repr(self) -> str:
        options = self.options_repr()
        return self.type_repr() + (f", {options}" if options else "")

    def __repr__(self) -> str:
        composite = any(isinstance(m, SetModule) for m in self.modules() if m is not self)
        return super().__repr__() if composite else f"{type(self).__name__}({self.extra_repr()})"


class EquivariantModule(SetModule):
    """A :class:`SetModule` equivariant to the group its reps name: ``f(g·x) = g·f(x)``.

    With no group (``None``) it is equivariant to S_n acting on the set axis (dim 1), for every
    set size: ``f(P·x) = P·f(x)`` for every permutation ``P`` of the real elements, with ``P``
    acting on each tensor according to its order (an invariant output does not change). With a
    group G of ``N`` positions (:class:`~symlight.models.GroupLinear`, or a network built for
    G) it is equivariant to G on sets of exactly ``N`` elements. An S_n-equivariant layer is
    equivariant to every group of the positions, so a layer built for a rep that names G says
    so in its reps. ``rep_in`` and ``rep_out`` name the same group. Every symlight layer and
    network except the baselines is one.
    """

    def __init__(self, rep_in: RepLike | int, rep_out: RepLike | int) -> None:
        super().__init__(rep_in, rep_out)
        if self.rep_in.groups != self.rep_out.groups:
            raise ValueError(
                f"{type(self).__name__}: an equivariant module takes and returns reps of one "
                f"group, got {self.rep_in} -> {self.rep_out}"
            )

    @property
    def group(self) -> PermutationGroup | None:
        """The group it is equivariant to (``None``: S_n of any set size)."""
        return self.rep_in.group


def mask_output(y: Tensor, mask: Tensor | None, order: int) -> Tensor:
    """Zero the padded entries of ``y`` (a tensor of order ``order``; layers call
    ``rep_out.zero_padding`` instead).
    """
    keep = entry_mask(mask, order, trailing=y.dim() - 1 - order)
    return y if keep is None else y.masked_fill(~keep, 0.0)
