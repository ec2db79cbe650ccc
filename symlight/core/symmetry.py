"""Symmetry types and the action of the symmetric group S_n on tensors.

Every tensor in symlight has an *order* over the set axis (dim 1):

- order 0, invariant: ``(B, C)``, unchanged by a permutation;
- order 1, per element: ``(B, n, C)``, ``(P·x)[b, i] = x[b, perm[b, i]]``;
- order 2, per pair: ``(B, n, n, C)``, ``(P·x)[b, i, j] = x[b, perm[b, i], perm[b, j]]``.

A permutation is a ``(B, n)`` long tensor, one permutation per set in the batch, so that each
set can be permuted among its own real elements while its padding stays where it is.

>>> x = torch.tensor([[10.0, 20.0, 30.0]]).unsqueeze(-1)
>>> perm = torch.tensor([[2, 0, 1]])
>>> permute(x, perm, order=1).squeeze(-1)
tensor([[30., 10., 20.]])
>>> permute(permute(x, perm, 1), inverse(perm), 1).squeeze(-1)
tensor([[10., 20., 30.]])

Over several independent sets (rows and columns of a matrix, agents and landmarks) the group is
the product of one group per set: an element is a tuple with one ``(B, n_s)`` permutation per set,
and a tensor of orders ``(k_1, k_2, ...)`` has ``k_1`` axes permuted by the first, then ``k_2``
by the second (:func:`permute_sets`).

>>> m = torch.arange(6.0).view(1, 2, 3, 1)
>>> permute_sets(m, (torch.tensor([[1, 0]]), torch.tensor([[2, 0, 1]])), (1, 1))[0, :, :, 0]
tensor([[5., 3., 4.],
        [2., 0., 1.]])
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum

import torch
from torch import Tensor

from symlight.core.groups import PermutationGroup, parse_group

__all__ = [
    "Order",
    "SetSymmetry",
    "check_order",
    "check_orders",
    "generators",
    "identity",
    "inverse",
    "permute",
    "permute_batch",
    "permute_sets",
    "random_permutation",
]


class Order(IntEnum):
    """Order of a tensor over the set axis: how many set axes it carries."""

    INVARIANT = 0
    SET = 1
    PAIRS = 2


def check_order(order: int) -> Order:
    """Return ``order`` as an :class:`Order`, or raise a ValueError naming the valid orders."""
    try:
        return Order(order)
    except ValueError:
        raise ValueError(
            f"order must be 0 (invariant), 1 (set) or 2 (pairs), got {order!r}"
        ) from None


def check_orders(order: int | Sequence[int]) -> Order | tuple[Order, ...]:
    """``order`` as an :class:`Order`, or, for a tensor over several sets, a tuple of one
    :class:`Order` per set; a ValueError names the valid orders.
    """
    if isinstance(order, (tuple, list)):
        if not order:
            raise ValueError("a tensor over several sets needs an order per set, got ()")
        return tuple(check_order(k) for k in order)
    return check_order(order)


@dataclass(frozen=True)
class SetSymmetry:
    """What a task's batch and its model output do under a permutation of the set.

    ``inputs`` maps each batch key that permutes to its order (the permuted axes start at dim 1);
    ``out_order`` is the order of the model output (0: invariant, 1: per element, 2: per pair).
    The key ``mask`` (``(B, n)`` bool, True for real elements) always permutes with order 1.
    ``group`` is the group that permutes the set axis: None for S_n of any set size, or a
    :class:`~symlight.core.groups.PermutationGroup` of ``N`` positions (or an expression such as
    ``"dihedral(16)"``), in which case every set has exactly ``N`` elements.

    Over several independent sets, orders are tuples with one order per set (``{"x": (1, 1)}``,
    ``out_order=(1, 0)``), the mask is a tuple of one ``(B, n_s)`` mask per set, and the group is
    the product of one group per set (``group`` a tuple, or one group for every set; None: S_n).
    """

    inputs: Mapping[str, int | tuple[int, ...]] = field(default_factory=lambda: {"x": 1})
    out_order: int | tuple[int, ...] = 1
    group: PermutationGroup | tuple | None = None

    def __post_init__(self) -> None:
        sets = self.num_sets
        if isinstance(self.group, (tuple, list)):
            if len(self.group) != sets:
                raise ValueError(f"one group per set: {sets} sets, got {len(self.group)} groups")
            object.__setattr__(self, "group", tuple(_group(g) for g in self.group))
        else:
            object.__setattr__(self, "group", _group(self.group))
        check_orders(self.out_order)
        for key, order in self.inputs.items():
            orders = check_orders(order)
            if (len(orders) if isinstance(orders, tuple) else 1) != sets:
                raise ValueError(
                    f"input {key!r} has orders {order} but the output is over {sets} sets"
                )
            if not any(orders if isinstance(orders, tuple) else (orders,)):
                raise ValueError(f"input {key!r} has order 0: invariant inputs need not be listed")

    @property
    def num_sets(self) -> int:
        """How many independent sets permute (the length of ``out_order`` when it is a tuple)."""
        return len(self.out_order) if isinstance(self.out_order, (tuple, list)) else 1

    @property
    def groups(self) -> tuple[PermutationGroup | None, ...]:
        """One group per set (None: S_n of any size)."""
        if isinstance(self.group, tuple):
            return self.group
        return (self.group,) * self.num_sets


def _group(group: PermutationGroup | str | None) -> PermutationGroup | None:
    return parse_group(group) if isinstance(group, str) else group


def identity(batch_size: int, n: int, device: torch.device | None = None) -> Tensor:
    """The identity permutation for each of ``batch_size`` sets of size ``n``."""
    return torch.arange(n, device=device).expand(batch_size, n).clone()


def inverse(perm: Tensor) -> Tensor:
    """The inverse permutation: ``permute(permute(x, p), inverse(p)) == x``."""
    return torch.argsort(perm, dim=-1)


def permute(x: Tensor, perm: Tensor, order: int) -> Tensor:
    """Apply ``perm`` (``(B, n)``) to ``x`` of the given order along dims 1..order."""
    order = check_order(order)
    if order == Order.INVARIANT:
        return x
    batch, n = perm.shape
    if x.shape[0] != batch or any(s != n for s in x.shape[1 : 1 + order]):
        raise ValueError(
            f"cannot permute a tensor of shape {tuple(x.shape)} as order {int(order)} "
            f"with permutations of shape {tuple(perm.shape)}"
        )
    rows = torch.arange(batch, device=x.device).view(batch, *([1] * order))
    if order == Order.SET:
        return x[rows, perm]
    return x[rows, perm[:, :, None], perm[:, None, :]]


def permute_sets(x: Tensor, perms: Sequence[Tensor], orders: Sequence[int]) -> Tensor:
    """Apply one permutation per set to ``x`` over several sets: ``perms[s]`` (``(B, n_s)``)
    permutes the ``orders[s]`` axes of set ``s``, which follow those of the sets before it.
    """
    if len(perms) != len(orders):
        raise ValueError(f"one permutation per set: {len(orders)} sets, got {len(perms)}")
    start = 1
    for perm, order in zip(perms, orders):
        order = check_order(order)
        if order:
            axes = list(range(start, start + order))
            front = list(range(1, 1 + order))
            x = permute(x.movedim(axes, front), perm, order).movedim(front, axes)
        start += order
    return x


def permute_batch(
    batch: Mapping[str, Tensor], perm: Tensor | Sequence[Tensor], symmetry: SetSymmetry
) -> dict:
    """Permute every tensor of ``batch`` that the symmetry declares, and the mask.

    Over several sets ``perm`` is a tuple with one permutation per set, and each set's mask is
    permuted by its own.
    """
    out = dict(batch)
    if symmetry.num_sets > 1:
        for key, orders in symmetry.inputs.items():
            out[key] = permute_sets(batch[key], perm, orders)
        if batch.get("mask") is not None:
            out["mask"] = tuple(
                None if m is None else permute(m, p, 1) for m, p in zip(batch["mask"], perm)
            )
        return out
    for key, order in symmetry.inputs.items():
        out[key] = permute(batch[key], perm, order)
    if batch.get("mask") is not None:
        out["mask"] = permute(batch["mask"], perm, 1)
    return out


def _real_positions(mask: Tensor | None, batch_size: int, n: int) -> list[Tensor]:
    if mask is None:
        return [torch.arange(n)] * batch_size
    return [row.nonzero().flatten() for row in mask.detach().cpu()]


def _scatter(positions: list[Tensor], images: list[Tensor], n: int, device) -> Tensor:
    perm = identity(len(positions), n)
    for row, (pos, img) in enumerate(zip(positions, images)):
        perm[row, pos] = pos[img]
    return perm.to(device)


def random_permutation(
    batch_size: int,
    n: int,
    mask: Tensor | None = None,
    generator: torch.Generator | None = None,
    device: torch.device | None = None,
) -> Tensor:
    """A uniformly random permutation per set that moves real elements only.

    Padded positions (``mask`` False) are fixed points, so a padded batch stays padded the same
    way after the permutation.
    """
    positions = _real_positions(mask, batch_size, n)
    images = [torch.randperm(len(pos), generator=generator) for pos in positions]
    return _scatter(positions, images, n, device)


def generators(
    batch_size: int, n: int, mask: Tensor | None = None, device: torch.device | None = None
) -> Iterator[Tensor]:
    """The two generators of S_n over each set's real elements.

    The transposition of the first two real elements and the cycle that moves every real element
    one place. Together they generate the whole group, so a map equivariant to both is equivariant
    to every permutation; a random sample may miss a violation that only one of them shows.
    """
    positions = _real_positions(mask, batch_size, n)
    swap = [_swap01(len(p)) for p in positions]
    cycle = [torch.arange(len(p)).roll(-1) for p in positions]
    yield _scatter(positions, swap, n, device)
    yield _scatter(positions, cycle, n, device)


def _swap01(size: int) -> Tensor:
    idx = torch.arange(size)
    if size >= 2:
        idx[0], idx[1] = 1, 0
    return idx
