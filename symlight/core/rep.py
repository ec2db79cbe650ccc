"""Representations: the symmetry type of a tensor, as one immutable value.

A :class:`Rep` says how a tensor transforms: how many ``channels`` it has, its *order* over each
set axis group (0 invariant, 1 per element, 2 per pair), and the group that permutes each set
(``None`` for the symmetric group S_n of any set size). It is what escnn's ``FieldType`` and e3nn's
``Irreps`` are to their libraries: layers declare ``rep_in`` and ``rep_out``, networks are built by
flowing ``rep = layer.rep_out``, and a task declares the representations of its inputs and outputs.

A tensor of ``Rep(C, order=k)`` has shape ``(B, n, ..., n, C)`` with ``k`` set axes of size ``n``
starting at dim 1. Several independent sets (agents x landmarks, rows x columns) have one order
per set: ``Rep(C, order=(1, 1))`` is a ``(B, n, m, C)`` tensor whose rows and columns permute
independently.

>>> Rep.parse("16x1")
16x1
>>> Rep(8, order=2, group="dihedral(16)")
8x2 @ D_16
>>> Rep.parse("8x2 @ dihedral(16)") == Rep(8, 2, "dihedral(16)")
True
>>> Rep.parse("4x(1,1)").num_sets, Rep.parse("4x(1,1)").orders
(2, (1, 1))
>>> Rep.parse("16x1").with_channels(3).with_order(0)
3x0
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from torch import Tensor

from .groups import PermutationGroup, parse_group

__all__ = ["Rep", "RepLike", "as_rep", "pair_mask"]

MAX_ORDER = 2
"""The highest order over one set that the layers implement (pairs)."""

_PATTERN = re.compile(
    r"^\s*(?P<channels>\d+)\s*x\s*(?P<orders>\d+|\(\s*\d+(\s*,\s*\d+)*\s*,?\s*\))"
    r"\s*(@\s*(?P<group>.+?))?\s*$"
)


@dataclass(frozen=True)
class Rep:
    """The symmetry type of a tensor: ``channels`` x ``order`` over each set, and the groups.

    Args:
        channels: features per entry (the last dim), at least 1.
        order: the order over the set axis (``0``, ``1`` or ``2``), or a tuple of orders, one per
            independent set.
        group: the group that permutes the set (a :class:`~symlight.core.groups.PermutationGroup`
            or an expression such as ``"dihedral(16)"``); ``None`` for S_n of any size. With
            several sets, one group (or None) per set.

    Two reps are equal when channels, orders and groups are. A group of ``N`` points fixes the
    set size to ``N``.

    """

    channels: int
    orders: tuple[int, ...]
    groups: tuple[PermutationGroup | None, ...]

    def __init__(
        self,
        channels: int,
        order: int | tuple[int, ...] = 1,
        group: PermutationGroup | str | None | tuple = None,
    ) -> None:
        orders = tuple(order) if isinstance(order, (tuple, list)) else (order,)
        if not orders:
            raise ValueError("a Rep needs at least one set (an order per set)")
        groups = tuple(group) if isinstance(group, (tuple, list)) else (group,) * len(orders)
        if len(groups) != len(orders):
            raise ValueError(
                f"a Rep over {len(orders)} sets needs one group per set, got {len(groups)}"
            )
        if not isinstance(channels, int) or isinstance(channels, bool) or channels < 1:
            raise ValueError(f"channels must be a positive int, got {channels!r}")
        for k in orders:
            if not isinstance(k, int) or isinstance(k, bool) or not 0 <= k <= MAX_ORDER:
                raise ValueError(
                    f"order must be 0 (invariant), 1 (set) or 2 (pairs), got {k!r}"
                )
        object.__setattr__(self, "channels", channels)
        object.__setattr__(self, "orders", orders)
        object.__setattr__(
            self, "groups", tuple(None if g is None else parse_group(g) for g in groups)
        )

    # -- parsing and printing ------------------------------------------------------------------
    @classmethod
    def parse(cls, text: str | Rep) -> Rep:
        """A Rep from its printed form: ``"16x1"``, ``"8x2 @ dihedral(16)"``, ``"4x(1,1)"``."""
        if isinstance(text, Rep):
            return text
        match = _PATTERN.match(str(text))
        if match is None:
            raise ValueError(
                f"cannot read the representation {text!r}: write CHANNELSxORDER, e.g. '16x1', "
                "'8x2 @ dihedral(16)' or '4x(1,1)' over two sets"
            )
        orders_text = match["orders"].strip("() ")
        orders = tuple(int(k) for k in orders_text.split(",") if k.strip())
        order = orders if match["orders"].startswith("(") else orders[0]
        group = match["group"]
        return cls(int(match["channels"]), order, _parse_groups(group, len(orders)))

    def __repr__(self) -> str:
        orders = str(self.orders[0]) if len(self.orders) == 1 else f"({','.join(map(str, self.orders))})"
        text = f"{self.channels}x{orders}"
        if any(g is not None for g in self.groups):
            names = ["S" if g is None else _short(g) for g in self.groups]
            text += f" @ {names[0] if len(names) == 1 else '(' + ', '.join(names) + ')'}"
        return text

    __str__ = __repr__

    # -- views ---------------------------------------------------------------------------------
    @property
    def num_sets(self) -> int:
        """How many independent sets the tensor is over."""
        return len(self.orders)

    @property
    def order(self) -> int:
        """The order over the one set (a ValueError for a Rep over several sets)."""
        self._single("order")
        return self.orders[0]

    @property
    def group(self) -> PermutationGroup | None:
        """The group of the one set (a ValueError for a Rep over several sets)."""
        self._single("group")
        return self.groups[0]

    @property
    def set_axes(self) -> int:
        """Number of set axes of the tensor (dims 1 .. set_axes)."""
        return sum(self.orders)

    @property
    def size(self) -> int | None:
        """The set size a group fixes (``N`` for a group of ``N`` points), or None for S_n."""
        self._single("size")
        return None if self.group is None else self.group.degree

    def with_channels(self, channels: int) -> Rep:
        return Rep(channels, self._order_arg(), self._group_arg())

    def with_order(self, order: int | tuple[int, ...]) -> Rep:
        return Rep(self.channels, order, self._group_arg())

    def with_group(self, group: PermutationGroup | str | None) -> Rep:
        return Rep(self.channels, self._order_arg(), group)

    # -- tensors -------------------------------------------------------------------------------
    def mask(self, mask: Tensor | None) -> Tensor | None:
        """The mask of this rep's entries from the ``(B, n)`` set mask: None for an invariant,
        the mask itself per element, ``mask_i & mask_j`` per pair; shaped to broadcast against
        the tensor (a trailing channel dim of 1).
        """
        self._single("mask")
        if mask is None or self.order == 0:
            return None
        keep = mask if self.order == 1 else pair_mask(mask)
        return keep.unsqueeze(-1)

    def zero_padding(self, y: Tensor, mask: Tensor | None) -> Tensor:
        """``y`` with its padded entries set to zero (the contract of every layer's output)."""
        keep = self.mask(mask)
        return y if keep is None else y.masked_fill(~keep, 0.0)

    def check(self, x: Tensor, name: str = "x") -> None:
        """Raise a ValueError when ``x`` is not shaped like a tensor of this rep."""
        axes = self.set_axes
        if x.dim() != axes + 2 or x.shape[-1] != self.channels:
            want = "(batch, " + "n, " * axes + f"{self.channels})"
            raise ValueError(f"{name} of rep {self} must be {want}, got {tuple(x.shape)}")
        if self.num_sets == 1 and self.order == 2 and x.shape[1] != x.shape[2]:
            raise ValueError(f"{name} of rep {self} must be square over its set axes")
        if self.num_sets == 1 and self.size is not None and self.order and x.shape[1] != self.size:
            raise ValueError(
                f"{name} of rep {self} has sets of {x.shape[1]} elements; {self.group} acts on "
                f"{self.size}"
            )

    # -- helpers -------------------------------------------------------------------------------
    def _single(self, what: str) -> None:
        if len(self.orders) != 1:
            raise ValueError(f"{what} of {self} is not defined: it is over {self.num_sets} sets")

    def _order_arg(self) -> int | tuple[int, ...]:
        return self.orders[0] if len(self.orders) == 1 else self.orders

    def _group_arg(self):
        return self.groups[0] if len(self.groups) == 1 else self.groups


RepLike = Rep | str
"""A :class:`Rep`, or its printed form (as written in a YAML config)."""


def as_rep(value: RepLike) -> Rep:
    """``value`` as a :class:`Rep` (parsing a string)."""
    return Rep.parse(value)


def pair_mask(mask: Tensor) -> Tensor:
    """``(B, n) -> (B, n, n)``: True where both elements of the pair are real."""
    return mask[:, :, None] & mask[:, None, :]


def _short(group: PermutationGroup) -> str:
    return repr(group)


def _parse_groups(text: str | None, num_sets: int):
    if text is None:
        return None
    text = text.strip()
    if num_sets == 1:
        return None if text == "S" else text
    parts = _split_top_level(text.strip()[1:-1]) if text.startswith("(") else [text] * num_sets
    return tuple(None if p == "S" else p for p in parts)


def _split_top_level(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return parts

