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
>>> Rep.parse("8x2 @ D_16") == Rep(8, 2, "dihedral(16)")
True

A layer that works for any number of channels and was not told how many it gets (an activation
built on its own) has ``channels=None``, printed ``?``: it matches every channel count
(:meth:`Rep.matches`), while two declared reps match only when they are equal.

>>> Rep(None, 1)
?x1
>>> Rep(None, 1).matches(Rep(16, 1)), Rep(8, 1).matches(Rep(16, 1))
(True, False)

Over several sets, each set axis has its own size and its own mask: the mask of a batch is a tuple
with one ``(B, n_s)`` bool tensor per set, in the order the rep names the sets (``None`` for a set
whose elements are all real), and :meth:`Rep.mask` combines them into the mask of the entries.

>>> import torch
>>> rows, cols = torch.tensor([[True, True, False]]), torch.tensor([[True, False]])
>>> Rep(4, (1, 1)).mask((rows, cols))[..., 0].tolist()
[[[True, False], [True, False], [False, False]]]
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from torch import Tensor

from .groups import PermutationGroup, parse_group

__all__ = ["MAX_ORDER", "Rep", "RepLike", "SetMask", "as_rep", "entry_mask", "set_masks"]

MAX_ORDER = 2
"""The highest order over one set that the layers implement (pairs)."""

_PATTERN = re.compile(
    r"^\s*(?P<channels>\d+|\?)\s*x\s*(?P<orders>\d+|\(\s*\d+(\s*,\s*\d+)*\s*,?\s*\))"
    r"\s*(@\s*(?P<group>.+?))?\s*$"
)


@dataclass(frozen=True, eq=False)
class Rep:
    """The symmetry type of a tensor: ``channels`` x ``order`` over each set, and the groups.

    Args:
        channels: features per entry (the last dim), at least 1; ``None`` when not declared
            (any number, printed ``?``).
        order: the order over the set axis (``0``, ``1`` or ``2``), or a tuple of orders, one per
            independent set.
        group: the group that permutes the set (a :class:`~symlight.core.groups.PermutationGroup`
            or an expression such as ``"dihedral(16)"``); ``None`` for S_n of any size. With
            several sets, one group (or None) per set.

    Two reps are equal when channels, orders and groups are (groups compare by their elements,
    so ``dihedral(16)`` parsed twice gives equal reps). A group of ``N`` points fixes the set size
    to ``N``. Invalid channels, orders or groups raise a ValueError.

    """

    channels: int | None
    orders: tuple[int, ...]
    groups: tuple[PermutationGroup | None, ...]

    def __init__(
        self,
        channels: int | None,
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
        if channels is not None and (
            not isinstance(channels, int) or isinstance(channels, bool) or channels < 1
        ):
            raise ValueError(f"channels must be a positive int (or None: any), got {channels!r}")
        for k in orders:
            if not isinstance(k, int) or isinstance(k, bool) or not 0 <= k <= MAX_ORDER:
                raise ValueError(f"order must be 0 (invariant), 1 (set) or 2 (pairs), got {k!r}")
        object.__setattr__(self, "channels", channels)
        object.__setattr__(self, "orders", orders)
        object.__setattr__(self, "groups", tuple(_read_group(g) for g in groups))

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
        channels = None if match["channels"] == "?" else int(match["channels"])
        return cls(channels, order, _parse_groups(group, len(orders)))

    def __repr__(self) -> str:
        orders = (
            str(self.orders[0]) if len(self.orders) == 1 else f"({','.join(map(str, self.orders))})"
        )
        text = f"{'?' if self.channels is None else self.channels}x{orders}"
        if any(g is not None for g in self.groups):
            names = ["S" if g is None else _short(g) for g in self.groups]
            text += f" @ {names[0] if len(names) == 1 else '(' + ', '.join(names) + ')'}"
        return text

    __str__ = __repr__

    # -- comparison ----------------------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Rep):
            return NotImplemented
        return (
            self.channels == other.channels
            and self.orders == other.orders
            and self.groups == other.groups  # groups compare by their elements
        )

    def __hash__(self) -> int:
        degrees = tuple(None if g is None else g.degree for g in self.groups)
        return hash((self.channels, self.orders, degrees))

    def matches(self, other: Rep) -> bool:
        """True when a tensor of this rep can feed a layer that takes ``other``: equal reps, or
        equal but for channels that one of them leaves undeclared (``None``).
        """
        if self.channels is None or other.channels is None:
            return self.with_channels(None) == other.with_channels(None)
        return self == other

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

    def with_channels(self, channels: int | None) -> Rep:
        """The same rep with ``channels`` channels."""
        return Rep(channels, self._order_arg(), self._group_arg())

    def with_order(self, order: int | tuple[int, ...]) -> Rep:
        """The same rep with another order (over each set), same channels and groups."""
        return Rep(self.channels, order, self._group_arg())

    def with_group(self, group: PermutationGroup | str | None) -> Rep:
        """The same rep under another group (``None``: S_n of any size)."""
        return Rep(self.channels, self._order_arg(), group)

    def dims(self, set_index: int) -> tuple[int, ...]:
        """The dims of a tensor of this rep that the set ``set_index`` permutes.

        >>> Rep(4, (2, 1)).dims(0), Rep(4, (2, 1)).dims(1), Rep(4, (0, 1)).dims(0)
        ((1, 2), (3,), ())
        """
        start = 1 + sum(self.orders[:set_index])
        return tuple(range(start, start + self.orders[set_index]))

    # -- tensors -------------------------------------------------------------------------------
    def mask(self, mask: SetMask) -> Tensor | None:
        """The mask of this rep's entries from the ``(B, n)`` set mask: None for an invariant,
        the mask itself per element, ``mask_i & mask_j`` per pair; shaped to broadcast against
        the tensor (a trailing channel dim of 1). Over several sets, ``mask`` has one set mask
        per set and an entry is real when it is real over every set. See :func:`entry_mask`.

        >>> import torch
        >>> set_mask = torch.tensor([[True, True, False]])
        >>> Rep(4, 2).mask(set_mask).shape, Rep(4, 0).mask(set_mask)
        (torch.Size([1, 3, 3, 1]), None)
        """
        if self.num_sets == 1 and not isinstance(mask, (tuple, list)):
            return entry_mask(mask, self.order)
        return entry_mask(mask, self.orders)

    def zero_padding(self, y: Tensor, mask: SetMask) -> Tensor:
        """``y`` with its padded entries set to zero (the contract of every layer's output)."""
        keep = self.mask(mask)
        return y if keep is None else y.masked_fill(~keep, 0.0)

    def check(self, x: Tensor, name: str = "x") -> None:
        """Raise a ValueError when ``x`` is not shaped like a tensor of this rep."""
        axes = self.set_axes
        channels = "C" if self.channels is None else self.channels
        if x.dim() != axes + 2 or x.shape[-1] != (self.channels or x.shape[-1]):
            want = "(batch, " + "n, " * axes + f"{channels})"
            raise ValueError(f"{name} of rep {self} must be {want}, got {tuple(x.shape)}")
        for s in range(self.num_sets):
            sizes = {x.shape[d] for d in self.dims(s)}
            if len(sizes) > 1:
                which = "" if self.num_sets == 1 else f" of set {s}"
                raise ValueError(f"{name} of rep {self} must be square over its set axes{which}")
            group = self.groups[s]
            if group is not None and sizes and sizes != {group.degree} and self.num_sets > 1:
                raise ValueError(
                    f"{name} of rep {self} has {sizes.pop()} elements in set {s}; {group} acts "
                    f"on {group.degree}"
                )
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

SetMask = Tensor | Sequence["Tensor | None"] | None
"""The padding mask of a batch: ``(B, n)`` bool (True for real elements) over one set; over
several sets a tuple with one such mask per set (``None`` for a set without padding); ``None``
when nothing is padded."""


def set_masks(mask: SetMask, num_sets: int) -> tuple[Tensor | None, ...]:
    """``mask`` as a tuple of one ``(B, n_s)`` mask (or None) per set.

    A bare tensor is the mask of a single set; over several sets the mask must be a tuple (or
    list) with one entry per set, else a ValueError says so.

    >>> import torch
    >>> set_masks(None, 2), len(set_masks(torch.ones(1, 3, dtype=torch.bool), 1))
    ((None, None), 1)
    """
    if mask is None:
        return (None,) * num_sets
    if isinstance(mask, Tensor):
        if num_sets != 1:
            raise ValueError(
                f"a batch over {num_sets} sets needs one (B, n) mask per set (a tuple), "
                f"got one tensor of shape {tuple(mask.shape)}"
            )
        return (mask,)
    masks = tuple(mask)
    if len(masks) != num_sets:
        raise ValueError(f"a batch over {num_sets} sets needs one mask per set, got {len(masks)}")
    return masks


def as_rep(value: RepLike) -> Rep:
    """``value`` as a :class:`Rep` (parsing a string)."""
    return Rep.parse(value)


def entry_mask(mask: SetMask, order: int | tuple[int, ...], trailing: int = 1) -> Tensor | None:
    """The real entries of a tensor of ``order`` over one set, from its ``(B, n)`` set mask.

    ``(B, n)`` -> ``(B, n, ..., n, 1, ..., 1)`` with ``order`` set axes (an entry is real when
    all its elements are: ``mask_i & mask_j`` for pairs) and ``trailing`` dims of size 1 (the
    channels), so it broadcasts against the tensor. None when ``mask`` is None or the order is 0
    (an invariant has no padded entries). The one place symlight turns a set mask into the mask
    of a tensor.

    >>> import torch
    >>> m = torch.tensor([[True, False]])
    >>> entry_mask(m, 1).shape, entry_mask(m, 2, trailing=0).tolist()
    (torch.Size([1, 2, 1]), [[[True, False], [False, False]]])

    Over several sets ``order`` is a tuple with one order per set and ``mask`` a tuple with one
    set mask per set (see :func:`set_masks`): an entry is real when it is real over every set.

    >>> rows, cols = torch.tensor([[True, False]]), torch.tensor([[True, True, False]])
    >>> entry_mask((rows, cols), (1, 1), trailing=0).int().tolist()
    [[[1, 1, 0], [0, 0, 0]]]
    """
    if isinstance(order, (tuple, list)):
        return _product_mask(set_masks(mask, len(order)), tuple(order), trailing)
    if mask is None or order == 0:
        return None
    if not 0 <= order <= MAX_ORDER:
        raise ValueError(f"order must be 0 (invariant), 1 (set) or 2 (pairs), got {order!r}")
    keep = mask if order == 1 else mask[:, :, None] & mask[:, None, :]
    return keep.view(*keep.shape, *([1] * trailing))


def _product_mask(
    masks: tuple[Tensor | None, ...], orders: tuple[int, ...], trailing: int
) -> Tensor | None:
    """The AND of each set's entry mask, each placed on its own dims."""
    keep = None
    axes = sum(orders)
    before = 0
    for mask, order in zip(masks, orders):
        part = entry_mask(mask, order, trailing=0)
        if part is not None:
            after = axes - before - order
            part = part.view(part.shape[0], *([1] * before), *part.shape[1:], *([1] * after))
            keep = part if keep is None else keep & part
        before += order
    return None if keep is None else keep.view(*keep.shape, *([1] * trailing))


def _short(group: PermutationGroup) -> str:
    return repr(group)


def _read_group(group: PermutationGroup | str | None) -> PermutationGroup | None:
    if group is None or isinstance(group, PermutationGroup):
        return group
    if not isinstance(group, str):
        raise ValueError(
            f"a group must be a PermutationGroup, an expression such as 'dihedral(16)' or None "
            f"(S_n), got {group!r}"
        )
    return parse_group(group)


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
