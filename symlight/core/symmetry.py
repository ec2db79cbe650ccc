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
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import IntEnum

import torch
from torch import Tensor

from symlight.core.groups import PermutationGroup, parse_group

__all__ = [
    "Order",
    "SetSymmetry",
    "check_order",
    "generators",
    "identity",
    "inverse",
    "permute",
    "permute_batch",
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


@dataclass(frozen=True)
class SetSymmetry:
    """What a task's batch and its model output do under a permutation of the set.

    ``inputs`` maps each batch key that permutes to its order (the permuted axes start at dim 1);
    ``out_order`` is the order of the model output (0: invariant, 1: per element, 2: per pair).
    The key ``mask`` (``(B, n)`` bool, True for real elements) always permutes with order 1.
    ``group`` is the group that permutes the set axis: None for S_n of any set size, or a
    :class:`~symlight.core.groups.PermutationGroup` of ``N`` positions (or an expression such as
    ``"dihedral(16)"``), in which case every set has exactly ``N`` elements.
    """

    inputs: Mapping[str, int] = field(default_factory=lambda: {"x": 1})
    out_order: int = 1
    group: PermutationGroup | None = None

    def __post_init__(self) -> None:
        if isinstance(self.group, str):
            object.__setattr__(self, "group", parse_group(self.group))
        for key, order in self.inputs.items():
            if check_order(order) == Order.INVARIANT:
                raise ValueError(f"input {key!r} has order 0: invariant inputs need not be listed")
        check_order(self.out_order)


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


def permute_batch(batch: Mapping[str, Tensor], perm: Tensor, symmetry: SetSymmetry) -> dict:
    """Permute every tensor of ``batch`` that the symmetry declares, and the mask."""
    out = dict(batch)
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
