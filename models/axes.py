"""Pooling over one set's axis and broadcasting along a new one: moving between orders per set.

For a tensor over several sets (``(B, n, m, C)`` of rep ``C x (1,1)``: rows and columns), a pool
over the columns gives one vector per row (``(1,1) -> (1,0)``) and a broadcast of a per-row
vector over the columns gives one per (row, column) (``(1,0) -> (1,1)``). Over one set the same
layers pool a set to an invariant (``1 -> 0``), pairs to elements (``2 -> 1``, over ``j`` of
``x_ij``) and broadcast back (``0 -> 1``, ``1 -> 2`` with ``y_ij = x_i``).
"""

from __future__ import annotations

from torch import Tensor

from symlight.core.groups import PermutationGroup
from symlight.core.rep import Rep, SetMask, set_masks

from .base import EquivariantModule
from .pooling import REDUCTIONS, Reduction, check_pooling, masked_pool

__all__ = ["AxisBroadcast", "AxisPool", "axis_mask", "check_set"]


def check_set(rep: Rep, set_index: int) -> int:
    """``set_index`` if ``rep`` has such a set, else a ValueError naming the rep."""
    if not isinstance(set_index, int) or not 0 <= set_index < rep.num_sets:
        raise ValueError(
            f"set must be 0 .. {rep.num_sets - 1} for a rep over {rep}, got {set_index}"
        )
    return set_index


def axis_mask(mask: Tensor | None, dim: int, ndim: int) -> Tensor | None:
    """A ``(B, n)`` set mask shaped to broadcast along dim ``dim`` of a tensor of ``ndim`` dims."""
    if mask is None:
        return None
    return mask.view(mask.shape[0], *([1] * (dim - 1)), mask.shape[1], *([1] * (ndim - dim - 1)))


class AxisPool(EquivariantModule):
    """Pool over the last axis of one set, equivariant to the permutations of every set:
    ``f(P·x) = P·f(x)``, the pooled set's order one less.

    ``(1,1) -> (1,0)``: ``y_i = reduce_j x_ij`` over the real ``j`` (each row pools its columns);
    ``(1,1) -> (0,1)`` with ``set=0``; over one set ``1 -> 0`` and ``2 -> 1`` (over ``j`` of
    ``x_ij``). ``reduce`` is ``sum``, ``mean``, ``max`` or ``min``; a fully padded set pools to
    zeros. ``channels`` is the channels it takes and returns (None: any).
    """

    def __init__(
        self,
        order: int | tuple[int, ...] = (1, 1),
        set: int = 0,  # noqa: A002  (the set of the rep, as a spec writes it)
        reduce: Reduction = "mean",
        channels: int | None = None,
        group: PermutationGroup | str | None | tuple = None,
    ) -> None:
        rep_in = Rep(channels, order, group)
        self.set_index = check_set(rep_in, set)
        orders = list(rep_in.orders)
        if orders[set] == 0:
            raise ValueError(f"cannot pool over set {set} of {rep_in}: it has no axis there")
        orders[set] -= 1
        super().__init__(rep_in, rep_in.with_order(tuple(orders)))
        self.reduce = check_pooling(reduce, REDUCTIONS)

    @classmethod
    def from_spec(cls, rep_in: Rep, set: int = 0, reduce: Reduction = "mean") -> AxisPool:  # noqa: A002
        """The pool over set ``set`` of input ``rep_in``; same channels and groups."""
        return cls(rep_in.orders, set, reduce, rep_in.channels, rep_in.groups)

    def forward(self, x: Tensor, mask: SetMask = None) -> Tensor:
        masks = set_masks(mask, self.rep_in.num_sets)
        dim = self.rep_in.dims(self.set_index)[-1]
        keep = axis_mask(masks[self.set_index], dim, x.dim())
        return self.rep_out.zero_padding(masked_pool(x, keep, dim, self.reduce), masks)

    def options_repr(self) -> str:
        return f"set={self.set_index}, {self.reduce}"


class AxisBroadcast(EquivariantModule):
    """Copy along a new last axis of one set, equivariant to the permutations of every set:
    ``f(P·x) = P·f(x)``, the set's order one more.

    ``(1,0) -> (1,1)``: ``y_ij = x_i`` for every column ``j`` (a per-row vector to every entry of
    its row); ``(0,1) -> (1,1)`` with ``set=0``; over one set ``0 -> 1`` and ``1 -> 2`` (``y_ij =
    x_i``). The new axis takes the set's size from its ``(B, n)`` mask, which is required.
    """

    def __init__(
        self,
        order: int | tuple[int, ...] = (1, 0),
        set: int = 0,  # noqa: A002
        channels: int | None = None,
        group: PermutationGroup | str | None | tuple = None,
    ) -> None:
        rep_in = Rep(channels, order, group)
        self.set_index = check_set(rep_in, set)
        orders = list(rep_in.orders)
        orders[set] += 1
        super().__init__(rep_in, rep_in.with_order(tuple(orders)))

    @classmethod
    def from_spec(cls, rep_in: Rep, set: int = 0) -> AxisBroadcast:  # noqa: A002
        """The broadcast along set ``set`` of input ``rep_in``; same channels and groups."""
        return cls(rep_in.orders, set, rep_in.channels, rep_in.groups)

    def forward(self, x: Tensor, mask: SetMask = None) -> Tensor:
        masks = set_masks(mask, self.rep_in.num_sets)
        set_mask = masks[self.set_index]
        if set_mask is None:
            raise ValueError(f"{self.extra_repr()}: broadcasting needs the (B, n) mask of the set")
        dim = self.rep_out.dims(self.set_index)[-1]
        y = x.unsqueeze(dim)
        shape = list(y.shape)
        shape[dim] = set_mask.shape[1]
        return self.rep_out.zero_padding(y.expand(shape), masks)

    def options_repr(self) -> str:
        return f"set={self.set_index}"
